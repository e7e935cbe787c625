"""gRPC-Web on the gateway's own port, next to gRPC: sonora's client (grpcio-generated stubs over
HTTP/1.1) for unary and server-streaming chat, statuses and deadlines; raw HTTP/1.1 (http.client)
and HTTP/2 (h2) for the wire itself: binary and base64-text bodies, the trailers frame (flag
0x80), CORS preflights and answers, and what is refused."""

import base64
import http.client
import re
import socket
import struct
import time
from urllib.parse import unquote

import grpc
import pytest
import sonora.client
from google.rpc import error_details_pb2, status_pb2

from conftest import ServerProcess
from h2client import RawClient
from vllmgateway.v1 import chat_pb2, service_pb2_grpc

SERVICE = "/vllmgateway.v1.VLLMService"
UNARY = f"{SERVICE}/CreateChatCompletion"
STREAM = f"{SERVICE}/StreamChatCompletion"
NOT_FOUND_MESSAGE = "The model `no-such-model` does not exist. Valid aliases: sim-model."
BINARY_TYPES = ["application/grpc-web", "application/grpc-web+proto"]
TEXT_TYPES = ["application/grpc-web-text", "application/grpc-web-text+proto"]
ALLOWED = "http://allowed.example"
ALSO_ALLOWED = "https://also-allowed.example:8443"
EXPOSED = {"grpc-status", "grpc-message", "grpc-status-details-bin"}


def chat(model="sim-model", max_tokens=12, text="Tell me about gRPC-Web", tokens_per_second=None):
    request = chat_pb2.ChatCompletionRequest(model=model, max_tokens=max_tokens,
                                             messages=[chat_pb2.ChatMessage(role="user", text=text)])
    if tokens_per_second:
        request.extra_body.update({"vllm_sim": {"tokens_per_second": tokens_per_second}})
    return request


def expected(vllm, request):
    """The answer and the chunks a gRPC client gets for the same request."""
    unary = vllm.CreateChatCompletion(request, timeout=30)
    chunks = list(vllm.StreamChatCompletion(request, timeout=30))
    return unary.choices[0].message.content, chunks


def text_of(chunks):
    return "".join(choice.delta.content for chunk in chunks for choice in chunk.choices)


def finish_reasons(chunks):
    return [choice.finish_reason for chunk in chunks for choice in chunk.choices if choice.HasField("finish_reason")]


# ---- gRPC-Web bodies ----

def frame(message: bytes, flags: int = 0) -> bytes:
    return struct.pack(">BI", flags, len(message)) + message


def base64_groups(text: bytes) -> bytes:
    """grpc-web-text: the gateway base64-encodes each piece of a response on its own, padding
    included, so the body is decoded 4 characters at a time, never as one string."""
    assert re.fullmatch(rb"[A-Za-z0-9+/=]*", text), f"not base64: {text[:80]!r}"
    assert len(text) % 4 == 0, f"{len(text)} base64 characters: not whole groups"
    return b"".join(base64.b64decode(text[i:i + 4], validate=True) for i in range(0, len(text), 4))


def split_frames(body: bytes):
    """(flags, payload) of each length-prefixed frame; the body must end with the last."""
    frames, index = [], 0
    while index < len(body):
        assert len(body) - index >= 5, f"body ends inside a frame header: {body[index:]!r}"
        flags, length = struct.unpack(">BI", body[index:index + 5])
        assert len(body) - index - 5 >= length, "body ends inside a frame"
        frames.append((flags, body[index + 5:index + 5 + length]))
        index += 5 + length
    return frames


def parse_trailer_frame(payload: bytes):
    """A trailers frame: `name:value` lines, each ending in CRLF."""
    text = payload.decode("ascii")
    assert text.endswith("\r\n"), f"trailers do not end in CRLF: {text!r}"
    fields = {}
    for line in text[:-2].split("\r\n"):
        name, colon, value = line.partition(":")
        assert colon and name == name.strip().lower(), f"malformed trailer line {line!r}"
        fields[name] = value.strip()
    return fields


class WebReply:
    """A gRPC-Web response: HTTP status and headers, the messages, and the trailers frame."""

    def __init__(self, http_status, headers, body, text=False):
        self.http_status = http_status
        self.headers = {name.lower(): value for name, value in headers}
        self.raw = body
        frames = split_frames(base64_groups(body) if text else body)
        self.messages = [payload for flags, payload in frames if flags == 0]
        trailer_frames = [(i, payload) for i, (flags, payload) in enumerate(frames) if flags == 0x80]
        assert all(flags in (0, 0x80) for flags, _ in frames), [flags for flags, _ in frames]
        assert len(trailer_frames) <= 1, "more than one trailers frame"
        if trailer_frames:
            assert trailer_frames[0][0] == len(frames) - 1, "the trailers frame is not the last"
        self.trailers = parse_trailer_frame(trailer_frames[0][1]) if trailer_frames else None

    @property
    def status_fields(self):
        """The status: from the trailers frame, or from the headers of a Trailers-Only answer."""
        if self.trailers is not None:
            assert "grpc-status" not in self.headers, "status both in the headers and the trailers frame"
            return self.trailers
        assert "grpc-status" in self.headers, "no trailers frame and no grpc-status header"
        return self.headers

    @property
    def status(self):
        return int(self.status_fields["grpc-status"])

    @property
    def message(self):
        return unquote(self.status_fields.get("grpc-message", ""))

    def error_info(self):
        value = self.status_fields["grpc-status-details-bin"]
        status = status_pb2.Status.FromString(base64.b64decode(value + "=" * (-len(value) % 4)))
        info = error_details_pb2.ErrorInfo()
        assert status.details[0].Unpack(info)
        return status, info


def http1_call(port, path, body: bytes, content_type, extra=(), method="POST", timeout=10):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"content-type": content_type} if content_type else {}
        if content_type and content_type.startswith("application/grpc-web"):
            headers["x-grpc-web"] = "1"
        headers.update(dict(extra))
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


def web_call_http1(port, path, request, content_type, extra=()):
    text = "text" in content_type
    body = frame(request.SerializeToString())
    status, headers, data = http1_call(port, path, base64.b64encode(body) if text else body, content_type, extra)
    return WebReply(status, headers, data, text)


def web_call_h2(port, path, request, content_type, extra=()):
    text = "text" in content_type
    body = frame(request.SerializeToString())
    client = RawClient(port)
    try:
        # A browser sends no `te: trailers`: gRPC-Web needs none.
        stream_id = client.start(path, [("x-grpc-web", "1"), *extra], content_type=content_type, te=None)
        client.send(stream_id, base64.b64encode(body) if text else body, end_stream=True)
        response = client.finish(stream_id)
    finally:
        client.close()
    assert response.reset is None, f"stream reset with {response.reset}"
    headers = dict(response.headers)
    http_status = int(headers.pop(":status"))
    return WebReply(http_status, headers.items(), response.data, text)


def wait_for_aborted(sim, count, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and sim.stats()["aborted"] < count:
        time.sleep(0.05)
    return sim.stats()["aborted"]


# ---- sonora: a gRPC-Web client library, with grpcio's generated stubs ----

class SonoraChannel:
    """sonora's channel as grpcio's generated stubs call it: since grpcio 1.63 they pass
    `_registered_method` to a channel's factories, a keyword sonora does not take."""

    def __init__(self, channel):
        self.channel = channel

    def unary_unary(self, path, request_serializer=None, response_deserializer=None, **_):
        return self.channel.unary_unary(path, request_serializer, response_deserializer)

    def unary_stream(self, path, request_serializer=None, response_deserializer=None, **_):
        return self.channel.unary_stream(path, request_serializer, response_deserializer)

    def stream_unary(self, path, request_serializer=None, response_deserializer=None, **_):
        return self.channel.stream_unary(path, request_serializer, response_deserializer)

    def stream_stream(self, path, request_serializer=None, response_deserializer=None, **_):
        return self.channel.stream_stream(path, request_serializer, response_deserializer)


@pytest.fixture
def web_vllm(gateway):
    with sonora.client.insecure_web_channel(f"http://{gateway.address}") as channel:
        yield service_pb2_grpc.VLLMServiceStub(SonoraChannel(channel))


def test_sonora_unary_chat(web_vllm, vllm):
    reply = web_vllm.CreateChatCompletion(chat(), timeout=10)
    grpc_reply = vllm.CreateChatCompletion(chat(), timeout=10)
    assert reply.choices[0].message.content == grpc_reply.choices[0].message.content
    assert reply.choices[0].finish_reason == grpc_reply.choices[0].finish_reason == "length"
    assert reply.usage == grpc_reply.usage and reply.usage.completion_tokens == 12
    assert reply.model == grpc_reply.model and reply.object == "chat.completion"


def test_sonora_streaming_chat(web_vllm, vllm):
    answer, grpc_chunks = expected(vllm, chat())
    chunks = list(web_vllm.StreamChatCompletion(chat(), timeout=10))
    assert text_of(chunks) == answer
    assert len(chunks) == len(grpc_chunks)
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert finish_reasons(chunks) == finish_reasons(grpc_chunks) and finish_reasons(chunks)[-1] == "length"


def test_sonora_unknown_model_is_not_found(web_vllm):
    for call in (web_vllm.CreateChatCompletion, lambda r, timeout: list(web_vllm.StreamChatCompletion(r, timeout=timeout))):
        with pytest.raises(grpc.RpcError) as error:
            call(chat(model="no-such-model"), timeout=10)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
        assert error.value.details() == NOT_FOUND_MESSAGE


def test_sonora_deadline_ends_the_stream_deadline_exceeded(web_vllm, vllm, sim):
    full = vllm.CreateChatCompletion(chat(max_tokens=100), timeout=10).choices[0].message.content
    aborted = sim.stats()["aborted"]
    received = []
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as error:
        for chunk in web_vllm.StreamChatCompletion(chat(max_tokens=100, tokens_per_second=20), timeout=0.5):
            received.append(chunk)
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The gateway's status in the trailers frame, not sonora's own socket timeout.
    assert error.value.details() != "request timed out at the client"
    assert time.monotonic() - started < 2.5, "100 tokens at 20 a second take 5 s: the deadline did not cut it"
    assert received and full.startswith(text_of(received)) and len(text_of(received)) < len(full) // 2
    assert wait_for_aborted(sim, aborted + 1) == aborted + 1, "the generation went on after the deadline"


# ---- The wire, over HTTP/1.1 ----

@pytest.mark.parametrize("content_type", BINARY_TYPES)
def test_binary_unary_over_http1(gateway, vllm, content_type):
    reply = web_call_http1(gateway.port, UNARY, chat(), content_type)
    assert reply.http_status == 200
    assert reply.headers["content-type"].startswith("application/grpc-web")
    assert "text" not in reply.headers["content-type"]
    assert len(reply.messages) == 1 and reply.trailers is not None, "one message, then the trailers frame"
    assert reply.trailers["grpc-status"] == "0"
    answer = chat_pb2.ChatCompletion.FromString(reply.messages[0]).choices[0].message.content
    assert answer == expected(vllm, chat())[0]


@pytest.mark.parametrize("content_type", TEXT_TYPES)
def test_text_stream_over_http1(gateway, vllm, content_type):
    reply = web_call_http1(gateway.port, STREAM, chat(), content_type)
    assert reply.http_status == 200
    assert reply.headers["content-type"].startswith("application/grpc-web-text")
    answer, grpc_chunks = expected(vllm, chat())
    chunks = [chat_pb2.ChatCompletionChunk.FromString(message) for message in reply.messages]
    assert text_of(chunks) == answer and len(chunks) == len(grpc_chunks)
    assert reply.trailers is not None and reply.trailers["grpc-status"] == "0"


def test_text_stream_arrives_as_it_is_generated_over_http1(gateway):
    """Each chunk goes out as vLLM sends it: over HTTP/1.1 the first message is in the browser's
    hands long before the trailers frame."""
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    connection.request("POST", STREAM, body=base64.b64encode(frame(chat(max_tokens=20, tokens_per_second=20)
                                                                    .SerializeToString())),
                       headers={"content-type": "application/grpc-web-text", "x-grpc-web": "1"})
    response = connection.getresponse()
    assert response.status == 200
    text, arrivals = b"", []
    while piece := response.read1(65536):
        text += piece
        whole = len(text) - len(text) % 4
        arrivals.append((time.monotonic(), len(split_frames_prefix(base64_groups(text[:whole])))))
    connection.close()
    first_message = next(at for at, count in arrivals if count >= 1)
    assert arrivals[-1][0] - first_message > 0.5, "20 tokens at 20 a second arrived all at once"
    reply = WebReply(200, [], text, text=True)
    assert len(reply.messages) >= 20 and reply.trailers["grpc-status"] == "0"


def split_frames_prefix(body: bytes):
    """The whole frames at the start of a body still arriving."""
    frames, index = [], 0
    while len(body) - index >= 5:
        length = struct.unpack(">I", body[index + 1:index + 5])[0]
        if len(body) - index - 5 < length:
            break
        frames.append(body[index + 5:index + 5 + length])
        index += 5 + length
    return frames


@pytest.mark.parametrize("content_type", ["application/grpc-web+proto", "application/grpc-web-text"])
def test_unknown_model_status_message_and_error_info(gateway, content_type):
    for path in (UNARY, STREAM):
        reply = web_call_http1(gateway.port, path, chat(model="no-such-model"), content_type)
        assert reply.http_status == 200
        assert reply.messages == []
        assert reply.status == 5 and reply.message == NOT_FOUND_MESSAGE
        status, info = reply.error_info()
        assert status.code == 5 and status.message == NOT_FOUND_MESSAGE
        assert (info.reason, info.domain) == ("NOT_FOUND_ERROR", "vllm")
        assert dict(info.metadata) == {"code": "404", "http_status": "404", "param": "model", "type": "NotFoundError"}


def test_grpc_timeout_ends_the_call_deadline_exceeded(gateway, sim):
    aborted = sim.stats()["aborted"]
    started = time.monotonic()
    reply = web_call_http1(gateway.port, STREAM, chat(max_tokens=100, tokens_per_second=20),
                           "application/grpc-web+proto", extra=[("grpc-timeout", "300m")])
    assert time.monotonic() - started < 2
    assert reply.http_status == 200 and reply.status == 4
    assert 0 < len(reply.messages) < 50
    assert wait_for_aborted(sim, aborted + 1) == aborted + 1


def test_malformed_text_body_is_internal(gateway, sim):
    """A grpc-web-text body that is not base64 cannot hold a message: INTERNAL, as for any request
    body the gateway cannot decode, saying why, and nothing reaches vLLM."""
    before = sim.stats()["by_path"].get("/v1/chat/completions", 0)
    status, headers, body = http1_call(gateway.port, UNARY, b"AAAA*not base64!", "application/grpc-web-text")
    reply = WebReply(status, headers, body, text=True)
    assert reply.http_status == 200 and reply.messages == []
    assert reply.status == 13, reply.status_fields
    assert "base64" in reply.message.lower(), reply.message
    assert sim.stats()["by_path"].get("/v1/chat/completions", 0) == before


def test_plain_http1_requests_are_refused(gateway):
    # A GET for a page, as a browser's address bar would send.
    status, _, _ = http1_call(gateway.port, "/", None, None, method="GET")
    assert 400 <= status < 500, status
    # A POST to a method with a content-type that is neither gRPC-Web nor Connect.
    status, _, _ = http1_call(gateway.port, UNARY, chat().SerializeToString(), "text/plain")
    assert status == 415
    # gRPC proper needs HTTP/2.
    status, _, _ = http1_call(gateway.port, UNARY, frame(chat().SerializeToString()), "application/grpc")
    assert status >= 400, status
    # The gateway serves on.
    with grpc.insecure_channel(gateway.address) as channel:
        assert service_pb2_grpc.VLLMServiceStub(channel).CreateChatCompletion(chat(), timeout=10).choices


def test_garbage_on_http1_closes_the_connection_not_the_gateway(gateway):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: banana\r\n\r\n")
        answer = b""
        try:
            while chunk := sock.recv(4096):
                answer += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    assert answer == b"" or re.match(rb"HTTP/1\.1 4\d\d ", answer), answer[:100]
    gateway.assert_alive()


# ---- The wire, over HTTP/2 ----

@pytest.mark.parametrize("content_type", ["application/grpc-web+proto", "application/grpc-web-text"])
def test_grpc_web_over_http2(gateway, vllm, content_type):
    reply = web_call_h2(gateway.port, STREAM, chat(), content_type)
    assert reply.http_status == 200
    assert reply.headers["content-type"].startswith("application/grpc-web-text" if "text" in content_type
                                                    else "application/grpc-web")
    answer, grpc_chunks = expected(vllm, chat())
    chunks = [chat_pb2.ChatCompletionChunk.FromString(message) for message in reply.messages]
    assert text_of(chunks) == answer and len(chunks) == len(grpc_chunks)
    assert reply.trailers is not None and reply.trailers["grpc-status"] == "0"


def test_grpc_web_error_over_http2(gateway):
    reply = web_call_h2(gateway.port, UNARY, chat(model="no-such-model"), "application/grpc-web+proto")
    assert reply.http_status == 200 and reply.messages == []
    assert reply.status == 5 and reply.message == NOT_FOUND_MESSAGE


# ---- CORS ----

@pytest.fixture(scope="module")
def cors_gateway(sim, tmp_path_factory):
    server = ServerProcess("vllm-grpc-gateway", ["--listen", "127.0.0.1:{port}", "--upstream", f"http://{sim.address}",
                                                 "--cors-origin", ALLOWED, "--cors-origin", ALSO_ALLOWED],
                           tmp_path_factory.mktemp("cors-gateway") / "gateway.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def any_origin_gateway(sim, tmp_path_factory):
    server = ServerProcess("vllm-grpc-gateway", ["--listen", "127.0.0.1:{port}", "--upstream", f"http://{sim.address}",
                                                 "--cors-origin", "*"],
                           tmp_path_factory.mktemp("any-origin-gateway") / "gateway.log")
    yield server
    server.stop()


GRPC_WEB_REQUEST_HEADERS = "content-type,x-grpc-web,x-user-agent,grpc-timeout"
CONNECT_REQUEST_HEADERS = "connect-protocol-version,connect-timeout-ms,content-type"


def header_set(value):
    return {item.strip().lower() for item in (value or "").split(",") if item.strip()}


def cors_headers(headers):
    return {name: value for name, value in headers.items() if name.startswith("access-control-")}


def preflight_http1(port, origin, requested_headers, path=STREAM):
    status, headers, body = http1_call(port, path, None, None, method="OPTIONS", extra={
        "origin": origin, "access-control-request-method": "POST",
        "access-control-request-headers": requested_headers})
    return status, {name.lower(): value for name, value in headers}, body


def preflight_h2(port, origin, requested_headers, path=STREAM):
    client = RawClient(port)
    try:
        stream_id = client.start(path, [("origin", origin), ("access-control-request-method", "POST"),
                                        ("access-control-request-headers", requested_headers)],
                                 method="OPTIONS", content_type=None, te=None, end_stream=True)
        response = client.finish(stream_id)
    finally:
        client.close()
    headers = dict(response.headers)
    return int(headers.pop(":status")), headers, response.data


@pytest.mark.parametrize("requested", [GRPC_WEB_REQUEST_HEADERS, CONNECT_REQUEST_HEADERS])
@pytest.mark.parametrize("preflight,origin", [(preflight_http1, ALLOWED), (preflight_h2, ALSO_ALLOWED)])
def test_preflight_from_an_allowed_origin(cors_gateway, preflight, origin, requested):
    status, headers, _ = preflight(cors_gateway.port, origin, requested)
    assert status == 204
    assert headers["access-control-allow-origin"] == origin
    assert "POST" in {method.upper() for method in header_set(headers["access-control-allow-methods"])}
    assert header_set(headers["access-control-allow-headers"]) == header_set(requested)


@pytest.mark.parametrize("preflight", [preflight_http1, preflight_h2])
def test_preflight_names_the_exposed_headers(cors_gateway, preflight):
    """The preflight's answer names the headers pages may read, as the actual answers do."""
    status, headers, _ = preflight(cors_gateway.port, ALLOWED, GRPC_WEB_REQUEST_HEADERS)
    assert status == 204
    assert EXPOSED <= header_set(headers.get("access-control-expose-headers"))


@pytest.mark.parametrize("preflight", [preflight_http1, preflight_h2])
def test_preflight_from_an_unlisted_origin_is_forbidden(cors_gateway, gateway, preflight):
    for server, origin in ((cors_gateway, "http://evil.example"), (cors_gateway, "http://allowed.example:8080"),
                           (gateway, ALLOWED)):
        status, headers, _ = preflight(server.port, origin, GRPC_WEB_REQUEST_HEADERS)
        assert status == 403, (server.port, origin)
        assert cors_headers(headers) == {}


def test_any_origin_is_allowed_with_a_star(any_origin_gateway):
    status, headers, _ = preflight_http1(any_origin_gateway.port, "http://anywhere.example:1234",
                                         GRPC_WEB_REQUEST_HEADERS)
    assert status == 204
    assert headers["access-control-allow-origin"] == "http://anywhere.example:1234"
    reply = web_call_http1(any_origin_gateway.port, UNARY, chat(), "application/grpc-web+proto",
                           extra=[("origin", "http://elsewhere.example")])
    assert reply.status == 0 and reply.headers["access-control-allow-origin"] == "http://elsewhere.example"


def test_calls_from_an_allowed_origin_carry_cors_headers(cors_gateway):
    for path, request in ((UNARY, chat()), (UNARY, chat(model="no-such-model")), (STREAM, chat())):
        reply = web_call_http1(cors_gateway.port, path, request, "application/grpc-web-text", extra=[("origin", ALLOWED)])
        assert reply.http_status == 200
        assert reply.headers["access-control-allow-origin"] == ALLOWED
        assert EXPOSED <= header_set(reply.headers.get("access-control-expose-headers"))
    reply = web_call_h2(cors_gateway.port, STREAM, chat(), "application/grpc-web+proto", extra=[("origin", ALSO_ALLOWED)])
    assert reply.status == 0 and reply.headers["access-control-allow-origin"] == ALSO_ALLOWED
    assert EXPOSED <= header_set(reply.headers.get("access-control-expose-headers"))


def test_calls_from_an_unlisted_origin_carry_no_cors_headers(cors_gateway):
    reply = web_call_http1(cors_gateway.port, UNARY, chat(), "application/grpc-web+proto",
                           extra=[("origin", "http://evil.example")])
    assert cors_headers(reply.headers) == {}
    reply = web_call_h2(cors_gateway.port, UNARY, chat(), "application/grpc-web+proto",
                        extra=[("origin", "http://evil.example")])
    assert cors_headers(reply.headers) == {}
