"""An upstream that reports absurd figures (token counts near 2^63, subtitle times of centuries,
a queue of 10^19 in its /metrics): the gateway answers what it can, and no figure ends it.
Swift's integer arithmetic traps on overflow, so each of these once ended the process."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest

from vllmgateway.v1 import audio_pb2, chat_pb2, responses_pb2, service_pb2_grpc

NEAR_MAX = 9_223_372_036_854_775_000  # fits an Int64; two of them do not
INT32_MAX = 2**31 - 1  # what the int32 usage fields hold of it
USAGE = {"prompt_tokens": NEAR_MAX, "completion_tokens": NEAR_MAX, "total_tokens": NEAR_MAX}


class AbsurdUpstream(BaseHTTPRequestHandler):
    """Chat completions (whole and streamed) with absurd usage, no /v1/responses (so Responses go
    through chat), verbose transcriptions whose segments end centuries in, and vLLM's gauges at
    10^19 waiting and a cache 10^16 full."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/v1/models":
            self.send(200, {"object": "list", "data": [{"id": "sim-model", "object": "model"}]})
        elif self.path == "/metrics":
            self.send(200, b'vllm:num_requests_waiting{model_name="sim-model"} 1e19\n'
                           b'vllm:kv_cache_usage_perc{model_name="sim-model"} 1e16\n', "text/plain")
        else:
            self.send(200, {})

    def do_POST(self):
        raw = self.rfile.read(int(self.headers["content-length"]))
        body = json.loads(raw) if self.path == "/v1/chat/completions" else {}
        if self.path == "/v1/chat/completions" and body.get("stream"):
            chunks = [{"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "sim-model",
                       "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"},
                                    "finish_reason": None}]},
                      {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "sim-model",
                       "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                      {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "sim-model",
                       "choices": [], "usage": USAGE}]
            data = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
            self.send(200, data, "text/event-stream")
        elif self.path == "/v1/chat/completions":
            self.send(200, {"id": "c", "object": "chat.completion", "created": 1, "model": "sim-model",
                            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                                         "finish_reason": "stop"}], "usage": USAGE})
        elif self.path == "/v1/audio/transcriptions":
            self.send(200, {"text": "hi", "language": "en", "duration": 1e17,
                            "segments": [{"id": 0, "start": 1e17, "end": 1.5e17, "text": "hi"}]})
        else:
            self.send(404, {"detail": "Not Found"})


@pytest.fixture(scope="module")
def absurd():
    server = ThreadingHTTPServer(("127.0.0.1", 0), AbsurdUpstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def chat():
    return chat_pb2.ChatCompletionRequest(model="sim-model", max_tokens=5,
                                          messages=[chat_pb2.ChatMessage(role="user", text="hello")])


def test_token_counts_near_two_to_the_63_end_no_call_and_no_gateway(absurd, start_server, tmp_path):
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps({"upstreams": [{"name": "absurd", "url": f"http://{absurd}"}],
                                  "access_log": str(tmp_path / "access.jsonl"),
                                  "auth": {"keys": [{"id": "team", "key": "sk-absurd", "tokens_per_minute": 10}]}}))
    gateway = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--config", str(config),
                           "--responses-mode", "chat", "--metrics-listen", "127.0.0.1:0")
    key = [("authorization", "Bearer sk-absurd")]
    with grpc.insecure_channel(gateway.address) as channel:
        stub = service_pb2_grpc.VLLMServiceStub(channel)
        # A stream's usage is read from vLLM's JSON (up to 18 digits): the key is charged ~1.8e18.
        chunks = list(stub.StreamChatCompletion(chat(), metadata=key, timeout=5))
        assert chunks[-1].usage.prompt_tokens == INT32_MAX
        # Far past its 10 tokens a minute: refused, with a RetryInfo whose wait (~10^19 seconds
        # at 10 a minute) is held to one that can be written.
        with pytest.raises(grpc.RpcError) as refused:
            stub.CreateChatCompletion(chat(), metadata=key, timeout=5)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert gateway.process.poll() is None
    # A second key-free gateway: Responses through chat add the two counts for their total (in
    # the gateway's Int, then held to the int32 field's range, as every count is).
    plain = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--upstream", f"http://{absurd}",
                         "--responses-mode", "chat", "--access-log", str(tmp_path / "plain.jsonl"))
    with grpc.insecure_channel(plain.address) as channel:
        stub = service_pb2_grpc.VLLMServiceStub(channel)
        request = responses_pb2.ResponseRequest(model="sim-model", input_text="hello", max_output_tokens=5)
        response = stub.CreateResponse(request, timeout=5)
        assert response.usage.input_tokens == INT32_MAX and response.usage.total_tokens == INT32_MAX
        events = list(stub.StreamResponse(request, timeout=5))
        completed = [e for e in events if e.WhichOneof("variant") == "response_completed"]
        assert completed and completed[0].response_completed.response.usage.total_tokens == INT32_MAX
        streamed = list(stub.StreamChatCompletion(chat(), timeout=5))
        assert streamed[-1].usage.completion_tokens == INT32_MAX
        assert stub.CreateChatCompletion(chat(), timeout=5).usage.completion_tokens == INT32_MAX
    assert plain.process.poll() is None and gateway.process.poll() is None


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_subtitle_times_of_centuries_are_written_not_fatal(absurd, start_server, fmt):
    gateway = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--upstream", f"http://{absurd}")
    with grpc.insecure_channel(gateway.address) as channel:
        stub = service_pb2_grpc.VLLMServiceStub(channel)
        reply = stub.CreateTranscription(
            audio_pb2.TranscriptionRequest(model="sim-model", file=b"\0" * 64, response_format=fmt), timeout=5)
        assert reply.response_format == fmt and "hi" in reply.text
        assert stub.CreateChatCompletion(chat(), timeout=5).usage.completion_tokens == INT32_MAX
    assert gateway.process.poll() is None


def test_a_queue_of_ten_to_the_nineteen_is_routed_around_not_fatal(absurd, sim, start_server, tmp_path):
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps({"upstreams": [{"name": "absurd", "url": f"http://{absurd}"},
                                                {"name": "sim", "url": f"http://{sim.address}"}],
                                  "routing": {"generation": "least_load"},
                                  "health": {"check_interval_seconds": 0.1}}))
    gateway = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--config", str(config))
    time.sleep(0.5)  # several health checks read both /metrics
    with grpc.insecure_channel(gateway.address) as channel:
        stub = service_pb2_grpc.VLLMServiceStub(channel)
        # The absurd upstream's queue makes it the most loaded: every call goes to the sim.
        for _ in range(4):
            assert stub.CreateChatCompletion(chat(), timeout=5).usage.completion_tokens == 5
    assert gateway.process.poll() is None
