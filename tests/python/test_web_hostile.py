"""HTTP/1.1 web clients that misbehave, against the gateway and vllm-sim: every one gets a precise
answer or a closed connection, and the server keeps serving gRPC and gRPC-Web alike."""

import base64
import socket
import struct
import time

from vllmgateway.v1 import chat_pb2

STREAM = "/vllmgateway.v1.VLLMService/StreamChatCompletion"
UNARY = "/vllmgateway.v1.VLLMService/CreateChatCompletion"


def request_bytes(max_tokens=4, text="hi"):
    return chat_pb2.ChatCompletionRequest(
        max_tokens=max_tokens, messages=[chat_pb2.ChatMessage(role="user", text=text)]).SerializeToString()


def framed(message, flags=0):
    return struct.pack(">BI", flags, len(message)) + message


def http1(path, body, content_type="application/grpc-web+proto", extra=b""):
    return (f"POST {path} HTTP/1.1\r\nHost: gw\r\ncontent-type: {content_type}\r\n"
            f"content-length: {len(body)}\r\n").encode() + extra + b"\r\n" + body


def read_responses(sock, count, timeout=10):
    """Reads `count` chunked HTTP/1.1 responses; returns [(status line, headers, body)]."""
    sock.settimeout(timeout)
    data = b""
    responses = []

    def need(n):
        nonlocal data
        while len(data) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError(f"closed after {len(responses)} responses")
            data += chunk

    while len(responses) < count:
        while b"\r\n\r\n" not in data:
            need(len(data) + 1)
        head, data = data.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        body = b""
        if headers.get("transfer-encoding") == "chunked":
            while True:
                while b"\r\n" not in data:
                    need(len(data) + 1)
                size_line, data = data.split(b"\r\n", 1)
                size = int(size_line, 16)
                need(size + 2)
                body, data = body + data[:size], data[size + 2:]
                if size == 0:
                    break
        else:
            length = int(headers.get("content-length", "0"))
            need(length)
            body, data = data[:length], data[length:]
        responses.append((lines[0], headers, body))
    return responses


def trailers_of(body):
    """The gRPC-Web trailers frame (flag 0x80) at the end of a binary body, as a dict."""
    index = 0
    while index < len(body):
        flags, length = struct.unpack(">BI", body[index:index + 5])
        payload = body[index + 5:index + 5 + length]
        index += 5 + length
        if flags & 0x80:
            return dict(line.split(":", 1) for line in payload.decode().split("\r\n") if line)
    return None


def test_pipelined_requests_are_answered_in_order(gateway):
    with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        sock.sendall(http1(STREAM, framed(request_bytes(6))) + http1(UNARY, framed(request_bytes(2))))
        (first, _, stream_body), (second, _, unary_body) = read_responses(sock, 2)
    assert first.startswith("HTTP/1.1 200") and second.startswith("HTTP/1.1 200")
    assert trailers_of(stream_body)["grpc-status"] == "0"
    assert trailers_of(unary_body)["grpc-status"] == "0"
    gateway.assert_alive()


def test_a_body_over_the_message_limit_is_refused_and_the_connection_goes_on(gateway):
    # A length prefix claiming 64 MiB, over the 4 MiB limit: judged from the prefix alone.
    oversized = struct.pack(">BI", 0, 64 * 1024 * 1024) + b"x" * 1024
    with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        sock.sendall(http1(UNARY, oversized))
        [(status, _, body)] = read_responses(sock, 1)
        assert status.startswith("HTTP/1.1 200")
        trailers = trailers_of(body)
        assert trailers["grpc-status"] == "8", trailers  # RESOURCE_EXHAUSTED
        assert "exceeds the limit" in trailers["grpc-message"].replace("%20", " ")
        # The rest of that body was read and dropped: the same connection serves the next call.
        sock.sendall(http1(UNARY, framed(request_bytes(2))))
        [(status, _, body)] = read_responses(sock, 1)
        assert trailers_of(body)["grpc-status"] == "0"


def test_garbage_text_body_gets_internal(gateway):
    with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        sock.sendall(http1(UNARY, b"!!!not base64!!!", content_type="application/grpc-web-text"))
        [(status, headers, body)] = read_responses(sock, 1)
    assert status.startswith("HTTP/1.1 200")
    decoded = base64.b64decode(body)
    trailers = trailers_of(decoded)
    assert trailers["grpc-status"] == "13"  # broken framing, as gRPC answers a bad compression flag
    assert "not base64" in trailers["grpc-message"].replace("%20", " ")


def test_malformed_http1_gets_400_and_the_server_keeps_serving(gateway):
    for garbage in [b"POST / HTTP/1.1\r\nHost: x\r\ncontent-length: nope\r\n\r\n",
                    b"POST /x HTTP/1.1\r\n" + b"a" * 200_000 + b"\r\n\r\n",
                    b"POST /x HTTP/9.9\r\n\r\n"]:
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
            try:
                sock.sendall(garbage)
                reply = sock.recv(4096)
            except (ConnectionResetError, BrokenPipeError):
                reply = b""
            assert reply == b"" or reply.startswith(b"HTTP/1.1 4"), reply[:80]
    gateway.assert_alive()
    with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        sock.sendall(http1(UNARY, framed(request_bytes(2))))
        [(_, _, body)] = read_responses(sock, 1)
        assert trailers_of(body)["grpc-status"] == "0"


def test_a_client_that_disconnects_mid_stream_aborts_the_upstream_request(gateway, sim):
    sim.reset()
    request = chat_pb2.ChatCompletionRequest(
        max_tokens=200, messages=[chat_pb2.ChatMessage(role="user", text="long")])
    request.extra_body.update({"vllm_sim": {"tokens_per_second": 20}})
    with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        sock.sendall(http1(STREAM, framed(request.SerializeToString())))
        sock.settimeout(10)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        stats = sim.stats()
        if stats.get("aborted", 0) >= 1:
            break
        time.sleep(0.05)
    assert sim.stats().get("aborted", 0) >= 1, sim.stats()
    gateway.assert_alive()


def test_http10_and_connection_close_get_whole_answers_then_a_close(gateway):
    # HTTP/1.0 has no chunked bodies: the answer ends with the connection. The fuzzer once found
    # that closing from inside the loopback's nghttp2 freed its sessions in use.
    for version, extra in (("HTTP/1.0", b""), ("HTTP/1.1", b"connection: close\r\n")):
        body = framed(request_bytes(3))
        request = (f"POST {UNARY} {version}\r\nHost: gw\r\ncontent-type: application/grpc-web+proto\r\n"
                   f"content-length: {len(body)}\r\n").encode() + extra + b"\r\n" + body
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
            sock.sendall(request)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        head, answer = received.split(b"\r\n\r\n", 1)
        assert head.startswith(f"{version} 200".encode()), head
        if version == "HTTP/1.0":
            assert b"transfer-encoding" not in head.lower()
            assert trailers_of(answer)["grpc-status"] == "0"
        else:
            assert b"connection: close" in head.lower()
            assert b"grpc-status:0\r\n" in answer  # inside the last chunk of the chunked body
    gateway.assert_alive()
