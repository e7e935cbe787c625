"""Concurrency and HTTP/2 hardening: many calls and connections, max concurrent streams,
rapid reset, CONTINUATION floods, PING floods, and a client that vanishes mid-stream."""

import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import h2.events
import h2.settings
import pytest

from grpc_testing import empty_pb2, messages_pb2, test_pb2_grpc
from h2client import RawClient, grpc_frame

EMPTY = "/grpc.testing.TestService/EmptyCall"
OUTPUT = "/grpc.testing.TestService/StreamingOutputCall"


def slow_stream_request(count=5, interval_us=200_000, size=10):
    return messages_pb2.StreamingOutputCallRequest(response_parameters=[
        messages_pb2.ResponseParameters(size=size, interval_us=interval_us) for _ in range(count)])


def test_500_concurrent_calls_on_one_connection(shared_interop):
    channel = grpc.insecure_channel(shared_interop.address)
    stub = test_pb2_grpc.TestServiceStub(channel)
    futures = [stub.UnaryCall.future(messages_pb2.SimpleRequest(response_size=i % 100 + 1), timeout=30)
               for i in range(500)]
    sizes = [len(f.result().payload.body) for f in futures]
    assert sizes == [i % 100 + 1 for i in range(500)]
    channel.close()


def test_500_concurrent_streams_open_at_once_on_one_connection(shared_interop):
    client = RawClient(shared_interop.port, timeout=30)
    request = grpc_frame(slow_stream_request(count=2, interval_us=300_000).SerializeToString())
    streams = []
    for _ in range(500):
        stream_id = client.start(OUTPUT)
        client.conn.send_data(stream_id, request, end_stream=True)
        streams.append(stream_id)
    client.flush()
    for stream_id in streams:
        assert client.finish(stream_id).status() == 0
    client.close()


def test_50_connections_at_once(shared_interop):
    def one_connection(index):
        channel = grpc.insecure_channel(shared_interop.address, options=[("grpc.use_local_subchannel_pool", 1),
                                                                         ("grpc.channel_id", index)])
        stub = test_pb2_grpc.TestServiceStub(channel)
        try:
            responses = list(stub.StreamingOutputCall(slow_stream_request(count=3, interval_us=100_000), timeout=30))
            return len(responses)
        finally:
            channel.close()

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(one_connection, range(50)))
    assert results == [3] * 50


def test_client_disconnect_mid_stream_cancels_and_server_keeps_serving(shared_interop):
    # Another client streams throughout.
    channel = grpc.insecure_channel(shared_interop.address)
    stub = test_pb2_grpc.TestServiceStub(channel)
    other = stub.StreamingOutputCall(slow_stream_request(count=8, interval_us=100_000), timeout=30)

    client = RawClient(shared_interop.port)
    stream_id = client.start(OUTPUT)
    client.send(stream_id, grpc_frame(slow_stream_request(count=50, interval_us=100_000).SerializeToString()),
                end_stream=True)
    client.wait(lambda: len(client.responses[stream_id].data) > 0)
    client.sock.close()  # no GOAWAY, no RST_STREAM: the connection just goes away

    assert shared_interop.wait_for_log("reason=connection closed"), "handler was not cancelled"
    assert len(list(other)) == 8
    assert stub.EmptyCall(empty_pb2.Empty(), timeout=5) == empty_pb2.Empty()
    channel.close()


def test_rst_stream_cancels_the_handler(interop):
    client = RawClient(interop.port)
    stream_id = client.start(OUTPUT)
    client.send(stream_id, grpc_frame(slow_stream_request(count=50, interval_us=100_000).SerializeToString()),
                end_stream=True)
    client.wait(lambda: len(client.responses[stream_id].data) > 0)
    client.reset(stream_id)
    assert interop.wait_for_log("reason=client reset")
    assert client.call(EMPTY, b"").status() == 0
    client.close()


def test_max_concurrent_streams_is_enforced(start_server):
    server = start_server("grpc-interop-server", "--port", "{port}", "--max-concurrent-streams", "4")
    client = RawClient(server.port)
    # Open more streams than allowed before reading the server's SETTINGS, so h2 does not stop us;
    # nghttp2 refuses streams beyond the limit it advertised even before the client acknowledges it.
    request = grpc_frame(slow_stream_request(count=2, interval_us=200_000).SerializeToString())
    streams = []
    for _ in range(6):
        stream_id = client.start(OUTPUT)
        client.conn.send_data(stream_id, request, end_stream=True)
        streams.append(stream_id)
    client.flush()
    outcomes = [client.finish(s) for s in streams]
    refused = [r for r in outcomes if r.reset == 7]  # REFUSED_STREAM
    ok = [r for r in outcomes if r.reset is None and r.status() == 0]
    assert len(ok) == 4 and len(refused) == 2
    assert client.remote_settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] == 4
    client.close()


def test_max_receive_message_size_is_configurable(start_server):
    server = start_server("grpc-interop-server", "--port", "{port}", "--max-receive-message-size", "1024")
    channel = grpc.insecure_channel(server.address)
    stub = test_pb2_grpc.TestServiceStub(channel)
    assert len(stub.UnaryCall(messages_pb2.SimpleRequest(response_size=5, payload=messages_pb2.Payload(
        body=b"a" * 900)), timeout=5).payload.body) == 5
    with pytest.raises(grpc.RpcError) as error:
        stub.UnaryCall(messages_pb2.SimpleRequest(payload=messages_pb2.Payload(body=b"a" * 2000)), timeout=5)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "exceeds the limit of 1024 bytes" in error.value.details()
    # A small gzip message that inflates past the limit is caught too.
    with pytest.raises(grpc.RpcError) as error:
        stub.UnaryCall(messages_pb2.SimpleRequest(payload=messages_pb2.Payload(body=b"a" * 100_000)), timeout=5,
                       compression=grpc.Compression.Gzip)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert stub.EmptyCall(empty_pb2.Empty(), timeout=5) == empty_pb2.Empty()
    channel.close()


def test_default_receive_limit_is_4_mib(shared_interop):
    channel = grpc.insecure_channel(shared_interop.address, options=[("grpc.max_send_message_length", 8 << 20)])
    stub = test_pb2_grpc.TestServiceStub(channel)
    with pytest.raises(grpc.RpcError) as error:
        stub.UnaryCall(messages_pb2.SimpleRequest(payload=messages_pb2.Payload(body=b"a" * (4 * 1024 * 1024 + 10))),
                       timeout=10)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    channel.close()


def frame_header(length, frame_type, flags, stream_id):
    return struct.pack(">I", length)[1:] + bytes([frame_type, flags]) + struct.pack(">I", stream_id)


def assert_goaway_then_close(client, error_code=None):
    client.wait(lambda: client.goaway is not None or client.closed, rounds=5000)
    assert client.goaway is not None or client.closed, "server did not drop the abusive connection"
    if client.goaway is not None and error_code is not None:
        assert client.goaway.error_code == error_code


def test_rapid_reset_is_stopped(interop):
    client = RawClient(interop.port, timeout=20)
    try:
        for _ in range(3000):
            stream_id = client.start(EMPTY)
            client.conn.reset_stream(stream_id)
        client.flush()
    except (BrokenPipeError, ConnectionResetError):
        client.closed = True
    assert_goaway_then_close(client)
    interop.assert_alive()
    other = RawClient(interop.port)
    assert other.call(EMPTY, b"").status() == 0


def test_continuation_flood_is_stopped(interop):
    sock = socket.create_connection(("127.0.0.1", interop.port), timeout=10)
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame_header(0, 4, 0, 0))
    # HEADERS without END_HEADERS, then endless CONTINUATION frames of one literal each.
    header_block = b"\x83\x86"  # :method POST, :scheme http
    sock.sendall(frame_header(len(header_block), 1, 0, 1) + header_block)
    closed = False
    try:
        for _ in range(2000):
            fragment = b"\x40\x01a\x01b"  # literal header a: b
            sock.sendall(frame_header(len(fragment), 9, 0, 1) + fragment)
    except (BrokenPipeError, ConnectionResetError):
        closed = True
    received = b""
    sock.settimeout(5)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            received += chunk
    except ConnectionResetError:
        closed = True
    except socket.timeout:
        pass
    assert closed, "server kept the connection open under a CONTINUATION flood"
    sock.close()
    interop.assert_alive()
    assert RawClient(interop.port).call(EMPTY, b"").status() == 0


@pytest.mark.parametrize("flood", ["ping", "settings"])
def test_control_frame_flood_from_a_client_that_never_reads(interop, flood):
    """PINGs and SETTINGS each demand an ACK; a client that sends them without reading the ACKs
    is dropped once nghttp2's queue of unsent ACKs is full."""
    sock = socket.create_connection(("127.0.0.1", interop.port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame_header(0, 4, 0, 0))
    if flood == "ping":
        ping = frame_header(8, 6, 0, 0) + b"floodme!"
    else:
        ping = frame_header(6, 4, 0, 0) + struct.pack(">HI", 4, 65535)  # SETTINGS_INITIAL_WINDOW_SIZE
    dropped = False
    started = time.monotonic()
    try:
        while time.monotonic() - started < 20:
            sock.sendall(ping * 1000)
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        dropped = True
    sock.close()
    assert dropped, f"server kept accepting a {flood} flood it could not answer"
    interop.assert_alive()
    assert RawClient(interop.port).call(EMPTY, b"").status() == 0


def test_garbage_instead_of_http2(interop):
    sock = socket.create_connection(("127.0.0.1", interop.port), timeout=5)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    sock.close()
    interop.assert_alive()
    assert RawClient(interop.port).call(EMPTY, b"").status() == 0


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_slow_reader_is_held_back_by_flow_control(interop):
    """A client that never reads, asking for 400 MiB: HTTP/2 flow control stops the sender and the
    server's buffer for the call stays bounded."""
    baseline = rss_mib(interop.process.pid)
    client = RawClient(interop.port)
    request = messages_pb2.StreamingOutputCallRequest(response_parameters=[
        messages_pb2.ResponseParameters(size=4 * 1024 * 1024) for _ in range(100)]).SerializeToString()
    stream_id = client.start(OUTPUT)
    client.send(stream_id, grpc_frame(request), end_stream=True)
    time.sleep(2)
    grown = rss_mib(interop.process.pid) - baseline
    assert grown < 64, f"server grew by {grown:.0f} MiB for a reader that does not read"
    client.reset(stream_id)
    assert interop.wait_for_log("reason=client reset")
    client.close()


def test_huge_response_size_is_refused(shared_interop):
    channel = grpc.insecure_channel(shared_interop.address)
    stub = test_pb2_grpc.TestServiceStub(channel)
    with pytest.raises(grpc.RpcError) as error:
        stub.UnaryCall(messages_pb2.SimpleRequest(response_size=2_000_000_000), timeout=5)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    channel.close()
