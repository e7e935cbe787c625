"""The Connect protocol on the gateway's own port, next to gRPC: connectrpc's generated client
(JSON and binary protobuf) for unary and server-streaming chat and errors with their details;
curl with a JSON body; and raw HTTP for the protocol itself: the error JSON and the HTTP status of
each code, the end-stream message, connect-timeout-ms, and HTTP/2 as well as HTTP/1.1."""

import base64
import http.client
import json
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2

from conftest import GENERATED, ROOT
from h2client import RawClient
from vllmgateway.v1 import chat_pb2


def _generate_connect_stubs():
    """vllmgateway/v1/service_connect.py beside the grpcio stubs conftest generated, by
    protoc-gen-connectrpc for google.protobuf messages, as its README says."""
    from grpc_tools import protoc
    plugin = Path(sys.executable).parent / "protoc-gen-connectrpc"
    if not plugin.exists():
        plugin = Path(shutil.which("protoc-gen-connectrpc") or plugin)
    well_known = Path(protoc.__file__).resolve().parent / "_proto"
    args = ["protoc", f"-I{ROOT / 'proto'}", f"-I{well_known}", f"--plugin=protoc-gen-connectrpc={plugin}",
            f"--connectrpc_out={GENERATED}", "--connectrpc_opt=protobuf=google", "vllmgateway/v1/service.proto"]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc-gen-connectrpc failed on proto/vllmgateway/v1/service.proto")


_generate_connect_stubs()

from connectrpc.code import Code  # noqa: E402
from connectrpc.compat import google_protobuf_binary_codec, google_protobuf_json_codec  # noqa: E402
from connectrpc.errors import ConnectError  # noqa: E402
from connectrpc.protocol import ProtocolType  # noqa: E402
from vllmgateway.v1.service_connect import VLLMServiceClientSync  # noqa: E402

SERVICE = "/vllmgateway.v1.VLLMService"
UNARY = f"{SERVICE}/CreateChatCompletion"
STREAM = f"{SERVICE}/StreamChatCompletion"
NOT_FOUND_MESSAGE = "The model `no-such-model` does not exist. Valid aliases: sim-model."
ERROR_INFO_METADATA = {"code": "404", "http_status": "404", "param": "model", "type": "NotFoundError"}
# connectrpc.com/docs/protocol: the HTTP status of a unary call that ends with each code.
HTTP_STATUS = {"canceled": 499, "unknown": 500, "invalid_argument": 400, "deadline_exceeded": 504,
               "not_found": 404, "already_exists": 409, "permission_denied": 403, "resource_exhausted": 429,
               "failed_precondition": 400, "aborted": 409, "out_of_range": 400, "unimplemented": 501,
               "internal": 500, "unavailable": 503, "data_loss": 500, "unauthenticated": 401}
CODECS = {"json": google_protobuf_json_codec(), "proto": google_protobuf_binary_codec()}


def chat(model="sim-model", max_tokens=12, text="Tell me about Connect", sim=None):
    request = chat_pb2.ChatCompletionRequest(model=model, max_tokens=max_tokens,
                                             messages=[chat_pb2.ChatMessage(role="user", text=text)])
    if sim:
        request.extra_body.update({"vllm_sim": sim})
    return request


def chat_json(request):
    """A request in the canonical proto3 JSON mapping (lowerCamelCase names)."""
    return json_format.MessageToDict(request)


def expected(vllm, request):
    """The answer and the chunks a gRPC client gets for the same request."""
    unary = vllm.CreateChatCompletion(request, timeout=30)
    chunks = list(vllm.StreamChatCompletion(request, timeout=30))
    return unary.choices[0].message.content, chunks


def text_of(chunks):
    return "".join(choice.delta.content for chunk in chunks for choice in chunk.choices)


def finish_reasons(chunks):
    return [choice.finish_reason for chunk in chunks for choice in chunk.choices if choice.HasField("finish_reason")]


def error_info_of(details):
    """The one google.rpc.ErrorInfo among a Connect error's details."""
    infos = [detail for detail in details if detail.type_name == "google.rpc.ErrorInfo"]
    assert len(infos) == 1, [detail.type_name for detail in details]
    return error_details_pb2.ErrorInfo.FromString(infos[0].message_bytes)


def error_info_of_json(details):
    infos = [detail for detail in details if detail["type"] == "google.rpc.ErrorInfo"]
    assert len(infos) == 1, details
    value = infos[0]["value"]
    # Connect's base64 may leave the padding out.
    return error_details_pb2.ErrorInfo.FromString(base64.b64decode(value + "=" * (-len(value) % 4)))


def wait_for_aborted(sim, count, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and sim.stats()["aborted"] < count:
        time.sleep(0.05)
    return sim.stats()["aborted"]


# ---- connectrpc's generated client ----

def client(gateway, codec="proto", protocol=ProtocolType.CONNECT):
    # The gateway's Connect is spoken uncompressed (identity): the client is told not to gzip.
    return VLLMServiceClientSync(f"http://{gateway.address}", codec=CODECS[codec], protocol=protocol,
                                 send_compression=None, accept_compression=())


@pytest.mark.parametrize("codec", ["json", "proto"])
def test_unary_chat(gateway, vllm, codec):
    with client(gateway, codec) as connect:
        reply = connect.create_chat_completion(chat(), timeout_ms=10_000)
    grpc_reply = vllm.CreateChatCompletion(chat(), timeout=10)
    assert reply.choices[0].message.content == grpc_reply.choices[0].message.content
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage == grpc_reply.usage and reply.usage.completion_tokens == 12
    assert reply.object == "chat.completion" and reply.model == grpc_reply.model


@pytest.mark.parametrize("codec", ["json", "proto"])
def test_server_streaming_chat(gateway, vllm, codec):
    answer, grpc_chunks = expected(vllm, chat())
    with client(gateway, codec) as connect:
        chunks = list(connect.stream_chat_completion(chat(), timeout_ms=10_000))
    assert text_of(chunks) == answer and len(chunks) == len(grpc_chunks)
    assert finish_reasons(chunks) == finish_reasons(grpc_chunks) and finish_reasons(chunks)[-1] == "length"


@pytest.mark.parametrize("codec", ["json", "proto"])
def test_unknown_model_is_not_found_with_error_info(gateway, codec):
    with client(gateway, codec) as connect:
        for call in (connect.create_chat_completion, lambda r, timeout_ms: list(
                connect.stream_chat_completion(r, timeout_ms=timeout_ms))):
            with pytest.raises(ConnectError) as error:
                call(chat(model="no-such-model"), timeout_ms=10_000)
            assert error.value.code == Code.NOT_FOUND
            assert error.value.message == NOT_FOUND_MESSAGE
            info = error_info_of(error.value.details)
            assert (info.reason, info.domain) == ("NOT_FOUND_ERROR", "vllm")
            assert dict(info.metadata) == ERROR_INFO_METADATA


@pytest.mark.parametrize("codec", ["json", "proto"])
def test_timeout_ends_the_stream_deadline_exceeded(gateway, vllm, sim, codec):
    aborted = sim.stats()["aborted"]
    received = []
    started = time.monotonic()
    with client(gateway, codec) as connect, pytest.raises(ConnectError) as error:
        for chunk in connect.stream_chat_completion(chat(max_tokens=100, sim={"tokens_per_second": 20}),
                                                    timeout_ms=500):
            received.append(chunk)
    assert error.value.code == Code.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 2.5
    full = vllm.CreateChatCompletion(chat(max_tokens=100), timeout=10).choices[0].message.content
    assert received and full.startswith(text_of(received)) and len(text_of(received)) < len(full) // 2
    assert wait_for_aborted(sim, aborted + 1) == aborted + 1


def test_connectrpc_grpc_web_client_streams_a_chat(gateway, vllm):
    """connectrpc's client speaks gRPC-Web too: a second, independent gRPC-Web implementation."""
    answer, grpc_chunks = expected(vllm, chat())
    with client(gateway, "proto", ProtocolType.GRPC_WEB) as web:
        chunks = list(web.stream_chat_completion(chat(), timeout_ms=10_000))
        assert text_of(chunks) == answer and len(chunks) == len(grpc_chunks)
        with pytest.raises(ConnectError) as error:
            web.create_chat_completion(chat(model="no-such-model"), timeout_ms=10_000)
    assert error.value.code == Code.NOT_FOUND and error.value.message == NOT_FOUND_MESSAGE


# ---- curl, as the Connect documentation shows it ----

def curl_json(gateway, path, body):
    result = subprocess.run(["curl", "-sS", "-H", "content-type: application/json", "-d", json.dumps(body),
                             "-w", "\n%{http_code} %{content_type}", f"http://{gateway.address}{path}"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    text, _, status_line = result.stdout.rpartition("\n")
    http_status, _, content_type = status_line.partition(" ")
    return int(http_status), content_type, json.loads(text)


def test_curl_unary_chat_with_a_json_body(gateway, vllm):
    status, content_type, reply = curl_json(gateway, UNARY, {
        "model": "sim-model", "maxTokens": 8, "messages": [{"role": "user", "text": "Hi"}]})
    assert (status, content_type) == (200, "application/json")
    grpc_reply = vllm.CreateChatCompletion(chat(max_tokens=8, text="Hi"), timeout=10)
    assert reply["choices"][0]["message"]["content"] == grpc_reply.choices[0].message.content
    # The canonical proto3 JSON mapping: lowerCamelCase names, 64-bit integers as strings.
    assert reply["choices"][0]["finishReason"] == "length" and "finish_reason" not in reply["choices"][0]
    assert reply["usage"] == {"promptTokens": grpc_reply.usage.prompt_tokens, "completionTokens": 8,
                              "totalTokens": grpc_reply.usage.prompt_tokens + 8}
    assert reply["created"] == str(int(reply["created"]))
    parsed = json_format.ParseDict(reply, chat_pb2.ChatCompletion())
    assert parsed.choices[0].message.content == grpc_reply.choices[0].message.content


def test_curl_accepts_the_original_snake_case_names(gateway):
    status, _, reply = curl_json(gateway, UNARY, {
        "model": "sim-model", "max_tokens": 5, "messages": [{"role": "user", "text": "Hi"}]})
    assert status == 200 and reply["usage"]["completionTokens"] == 5


def test_curl_unknown_model_gets_connect_error_json(gateway):
    status, content_type, error = curl_json(gateway, UNARY, {
        "model": "no-such-model", "messages": [{"role": "user", "text": "Hi"}]})
    assert (status, content_type) == (404, "application/json")
    assert error["code"] == "not_found" and error["message"] == NOT_FOUND_MESSAGE
    info = error_info_of_json(error["details"])
    assert (info.reason, info.domain) == ("NOT_FOUND_ERROR", "vllm")
    assert dict(info.metadata) == ERROR_INFO_METADATA


# ---- Raw HTTP: unary ----

def post(port, path, body: bytes, content_type, extra=(), timeout=10):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers={"content-type": content_type,
                                                              "connect-protocol-version": "1", **dict(extra)})
        response = connection.getresponse()
        return response.status, {name.lower(): value for name, value in response.getheaders()}, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("upstream_status,code", [
    (400, "invalid_argument"), (401, "unauthenticated"), (403, "permission_denied"), (404, "not_found"),
    (429, "resource_exhausted"), (500, "internal"), (501, "unimplemented"), (502, "unavailable"),
    (503, "unavailable"), (504, "deadline_exceeded")])
@pytest.mark.parametrize("content_type", ["application/json", "application/proto"])
def test_unary_error_http_status_follows_its_code(gateway, upstream_status, code, content_type):
    request = chat(sim={"fault": "http_error", "status": upstream_status, "message": f"failure {upstream_status}"})
    body = json.dumps(chat_json(request)).encode() if content_type == "application/json" \
        else request.SerializeToString()
    status, headers, data = post(gateway.port, UNARY, body, content_type)
    # Unary errors are JSON whatever the request's codec.
    assert (status, headers["content-type"]) == (HTTP_STATUS[code], "application/json")
    error = json.loads(data)
    assert error["code"] == code
    if upstream_status != 401:  # vLLM's 401 says its own words
        assert error["message"] == f"failure {upstream_status}"
    info = error_info_of_json(error["details"])
    assert info.domain == "vllm" and info.metadata["http_status"] == str(upstream_status)


def test_unary_proto(gateway, vllm):
    status, headers, data = post(gateway.port, UNARY, chat().SerializeToString(), "application/proto")
    assert (status, headers["content-type"]) == (200, "application/proto")
    reply = chat_pb2.ChatCompletion.FromString(data)
    assert reply.choices[0].message.content == expected(vllm, chat())[0]


def test_malformed_json_gets_a_connect_error(gateway, sim):
    before = sim.stats()["by_path"].get("/v1/chat/completions", 0)
    for body in (b'{"model": "sim-model", "messages": [', b'{"maxTokens": "many"}', b'[1, 2]'):
        status, headers, data = post(gateway.port, UNARY, body, "application/json")
        error = json.loads(data)
        assert headers["content-type"] == "application/json"
        assert error["code"] in HTTP_STATUS and status == HTTP_STATUS[error["code"]] and status != 200, (body, error)
        assert error["message"], body
    assert sim.stats()["by_path"].get("/v1/chat/completions", 0) == before


@pytest.mark.parametrize("content_type", ["application/json", "application/proto"])
def test_connect_timeout_ms_bounds_a_unary_call(gateway, sim, content_type):
    aborted = sim.stats()["aborted"]
    request = chat(max_tokens=100, sim={"tokens_per_second": 20})
    body = json.dumps(chat_json(request)).encode() if content_type == "application/json" \
        else request.SerializeToString()
    started = time.monotonic()
    status, headers, data = post(gateway.port, UNARY, body, content_type, extra=[("connect-timeout-ms", "300")])
    assert time.monotonic() - started < 2, "100 tokens at 20 a second take 5 s: the timeout did not cut it"
    assert (status, json.loads(data)["code"]) == (504, "deadline_exceeded")
    assert wait_for_aborted(sim, aborted + 1) == aborted + 1


def h2_call(port, path, body: bytes, content_type):
    client = RawClient(port)
    try:
        # Connect needs no `te: trailers`.
        stream_id = client.start(path, [("connect-protocol-version", "1")], content_type=content_type, te=None)
        client.send(stream_id, body, end_stream=True)
        response = client.finish(stream_id)
    finally:
        client.close()
    assert response.reset is None, f"stream reset with {response.reset}"
    return response


@pytest.mark.parametrize("codec", ["json", "proto"])
def test_connect_over_http2(gateway, vllm, codec):
    answer, grpc_chunks = expected(vllm, chat())
    body = json.dumps(chat_json(chat())).encode() if codec == "json" else chat().SerializeToString()
    response = h2_call(gateway.port, UNARY, body, f"application/{codec}")
    assert response.headers[":status"] == "200" and response.headers["content-type"] == f"application/{codec}"
    reply = json_format.Parse(response.data, chat_pb2.ChatCompletion()) if codec == "json" \
        else chat_pb2.ChatCompletion.FromString(response.data)
    assert reply.choices[0].message.content == answer
    response = h2_call(gateway.port, STREAM, envelope(body), f"application/connect+{codec}")
    assert response.headers[":status"] == "200"
    assert response.headers["content-type"] == f"application/connect+{codec}"
    messages, end = split_stream(response.data)
    decode = (lambda m: json_format.Parse(m, chat_pb2.ChatCompletionChunk())) if codec == "json" \
        else chat_pb2.ChatCompletionChunk.FromString
    assert text_of(decode(m) for m in messages) == answer and len(messages) == len(grpc_chunks)
    assert "error" not in end


# ---- Raw HTTP: streams ----

def envelope(payload: bytes, flags=0) -> bytes:
    return struct.pack(">BI", flags, len(payload)) + payload


def split_stream(body: bytes):
    """The messages of a Connect stream and its end-stream message (flag 0x02), which is last."""
    messages, end, index = [], None, 0
    while index < len(body):
        assert end is None, "data after the end-stream message"
        assert len(body) - index >= 5, "body ends inside an envelope header"
        flags, length = struct.unpack(">BI", body[index:index + 5])
        payload = body[index + 5:index + 5 + length]
        assert len(payload) == length, "body ends inside an envelope"
        if flags == 0x02:
            end = json.loads(payload)
            assert isinstance(end, dict), end
        else:
            assert flags == 0, f"flags {flags:#x} on a message"
            messages.append(payload)
        index += 5 + length
    assert end is not None, "no end-stream message"
    return messages, end


def stream_call(port, request, codec="json", extra=()):
    payload = json.dumps(chat_json(request)).encode() if codec == "json" else request.SerializeToString()
    status, headers, data = post(port, STREAM, envelope(payload), f"application/connect+{codec}", extra)
    messages, end = split_stream(data)
    decode = (lambda m: json_format.Parse(m, chat_pb2.ChatCompletionChunk())) if codec == "json" \
        else chat_pb2.ChatCompletionChunk.FromString
    return status, headers, [decode(m) for m in messages], end


@pytest.mark.parametrize("codec", ["json", "proto"])
def test_stream_ends_with_an_end_stream_message(gateway, vllm, codec):
    status, headers, chunks, end = stream_call(gateway.port, chat(), codec)
    assert (status, headers["content-type"]) == (200, f"application/connect+{codec}")
    answer, grpc_chunks = expected(vllm, chat())
    assert text_of(chunks) == answer and len(chunks) == len(grpc_chunks)
    assert finish_reasons(chunks) == finish_reasons(grpc_chunks)
    assert "error" not in end and set(end) <= {"metadata"}, end


@pytest.mark.parametrize("codec", ["json", "proto"])
def test_stream_error_is_in_the_end_stream_message(gateway, codec):
    status, headers, chunks, end = stream_call(gateway.port, chat(model="no-such-model"), codec)
    assert status == 200 and chunks == []
    assert end["error"]["code"] == "not_found" and end["error"]["message"] == NOT_FOUND_MESSAGE
    info = error_info_of_json(end["error"]["details"])
    assert (info.reason, info.domain) == ("NOT_FOUND_ERROR", "vllm")


@pytest.mark.parametrize("codec", ["json", "proto"])
def test_stream_error_mid_stream_follows_the_chunks_sent(gateway, codec):
    status, _, chunks, end = stream_call(gateway.port, chat(max_tokens=8, sim={
        "fault": "stream_error", "after": 3, "status": 500, "message": "engine died"}), codec)
    assert status == 200 and len(chunks) == 3
    assert (end["error"]["code"], end["error"]["message"]) == ("internal", "engine died")


@pytest.mark.parametrize("codec", ["json", "proto"])
def test_connect_timeout_ms_bounds_a_stream(gateway, vllm, sim, codec):
    aborted = sim.stats()["aborted"]
    started = time.monotonic()
    status, _, chunks, end = stream_call(gateway.port, chat(max_tokens=100, sim={"tokens_per_second": 20}), codec,
                                         extra=[("connect-timeout-ms", "400")])
    assert time.monotonic() - started < 2
    assert status == 200 and end["error"]["code"] == "deadline_exceeded"
    full = vllm.CreateChatCompletion(chat(max_tokens=100), timeout=10).choices[0].message.content
    assert chunks and full.startswith(text_of(chunks)) and len(text_of(chunks)) < len(full) // 2
    assert wait_for_aborted(sim, aborted + 1) == aborted + 1
