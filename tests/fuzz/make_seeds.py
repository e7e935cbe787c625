"""Writes the seed corpus for fuzz-http2-connection: the client side of real exchanges (after the
connection preface, which the target adds itself when the first byte is odd), made with h2."""

import gzip
import struct
import sys
from pathlib import Path

import h2.config
import h2.connection

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python" / "generated"))  # made by the pytest run


def frame(message, compressed=False):
    return struct.pack(">BI", 1 if compressed else 0, len(message)) + message


def headers(path, extra=()):
    return [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "x"),
            ("content-type", "application/grpc"), ("te", "trailers")] + list(extra)


def seed(name, steps):
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    out = conn.data_to_send()[24:]  # keep SETTINGS, drop the 24-byte magic
    for step in steps:
        step(conn)
        out += conn.data_to_send()
    return name, out


def unary(path, message, extra=(), compressed=False):
    def step(conn):
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, headers(path, extra))
        conn.send_data(stream, frame(message, compressed), end_stream=True)
    return step


def main():
    from grpc_testing import messages_pb2
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    simple = messages_pb2.SimpleRequest(response_size=10, payload=messages_pb2.Payload(body=b"x" * 20),
                                        response_status=messages_pb2.EchoStatus(code=0)).SerializeToString()
    streaming = messages_pb2.StreamingOutputCallRequest(response_parameters=[
        messages_pb2.ResponseParameters(size=5, interval_us=1000)] * 3).SerializeToString()
    seeds = [
        seed("empty_call", [unary("/grpc.testing.TestService/EmptyCall", b"")]),
        seed("unary_call", [unary("/grpc.testing.TestService/UnaryCall", simple,
                                  extra=[("grpc-timeout", "5S"), ("x-grpc-test-echo-trailing-bin", "AAE")])]),
        seed("gzip_call", [unary("/grpc.testing.TestService/UnaryCall", gzip.compress(simple),
                                 extra=[("grpc-encoding", "gzip"), ("grpc-accept-encoding", "gzip")], compressed=True)]),
        seed("streaming", [unary("/grpc.testing.TestService/StreamingOutputCall", streaming)]),
        seed("full_duplex", [unary("/grpc.testing.TestService/FullDuplexCall", streaming)]),
        seed("health", [unary("/grpc.health.v1.Health/Check", b""), unary("/grpc.health.v1.Health/Watch", b"")]),
        seed("reflection", [unary("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", b"\x3a\x00"),
                            unary("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                                  b"\x22\x18grpc.testing.TestService")]),
        seed("reset", [unary("/grpc.testing.TestService/StreamingOutputCall", streaming),
                       lambda conn: conn.reset_stream(1), lambda conn: conn.ping(b"12345678")]),
        seed("unknown_method", [unary("/grpc.testing.TestService/Nope", b"")]),
    ]
    for name, data in seeds:
        # The first byte is the target's control byte: odd means "send the preface first".
        (out_dir / name).write_bytes(b"\x01" + data)


if __name__ == "__main__":
    main()
