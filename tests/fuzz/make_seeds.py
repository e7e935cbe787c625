"""Writes the seed corpus for fuzz-http2-connection: the client side of real exchanges (after the
connection preface, which the target adds itself when the first byte is odd), made with h2."""

import base64
import gzip
import struct
import sys
from pathlib import Path

import h2.config
import h2.connection

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python" / "generated"))  # made by the pytest run


def frame(message, compressed=False):
    return struct.pack(">BI", 1 if compressed else 0, len(message)) + message


def headers(path, extra=(), content_type="application/grpc"):
    base = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "x"),
            ("content-type", content_type)]
    if content_type == "application/grpc":
        base.append(("te", "trailers"))
    return base + list(extra)


def seed(name, steps):
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    out = conn.data_to_send()[24:]  # keep SETTINGS, drop the 24-byte magic
    for step in steps:
        step(conn)
        out += conn.data_to_send()
    return name, out


def unary(path, message, extra=(), compressed=False, content_type="application/grpc", bare=False):
    def step(conn):
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, headers(path, extra, content_type))
        conn.send_data(stream, message if bare else frame(message, compressed), end_stream=True)
    return step


def http1(path, body, content_type, extra=""):
    """An HTTP/1.1 request, as gRPC-Web and Connect clients send them to the same port."""
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\ncontent-type: {content_type}\r\n{extra}"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


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
    web = [
        seed("grpc_web_h2", [unary("/grpc.testing.TestService/UnaryCall", simple,
                                   content_type="application/grpc-web+proto", extra=[("origin", "http://allowed.test")])]),
        seed("grpc_web_text_h2", [unary("/grpc.testing.TestService/StreamingOutputCall",
                                        base64.b64encode(frame(streaming)), content_type="application/grpc-web-text",
                                        bare=True)]),
        seed("connect_h2", [unary("/grpc.testing.TestService/UnaryCall", simple, content_type="application/proto",
                                  bare=True, extra=[("connect-timeout-ms", "5000")]),
                            unary("/grpc.testing.TestService/StreamingOutputCall", streaming,
                                  content_type="application/connect+proto")]),
    ]
    for name, data in seeds + web:
        # The first byte is the target's control byte: odd means "send the preface first"; bit 1
        # starts the connection with the handler that tells HTTP/1.1 from HTTP/2.
        (out_dir / name).write_bytes(b"\x01" + data)
    # HTTP/1.1 (control byte 2: sniffing, no preface): gRPC-Web, Connect, a preflight, pipelined.
    http1_seeds = {
        "grpc_web_http1": http1("/grpc.testing.TestService/UnaryCall", frame(simple), "application/grpc-web+proto",
                                "origin: http://allowed.test\r\n"),
        "grpc_web_text_http1": http1("/grpc.testing.TestService/StreamingOutputCall",
                                     base64.b64encode(frame(streaming)), "application/grpc-web-text"),
        "connect_http1": http1("/grpc.testing.TestService/UnaryCall", simple, "application/proto")
        + http1("/grpc.testing.TestService/StreamingOutputCall", frame(streaming), "application/connect+proto"),
        "preflight_http1": b"OPTIONS /grpc.testing.TestService/UnaryCall HTTP/1.1\r\nHost: x\r\n"
        b"origin: http://allowed.test\r\naccess-control-request-method: POST\r\n\r\n",
        "refused_http1": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    }
    for name, data in http1_seeds.items():
        (out_dir / name).write_bytes(b"\x02" + data)


if __name__ == "__main__":
    main()
