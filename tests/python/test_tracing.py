"""Tracing through OpenTelemetry, configured by the standard OTEL_* variables: each call is a server
span, child of the caller's W3C traceparent (or the root of a new trace), and its request to vLLM a
client span whose context vLLM receives as its traceparent. The spans reach a real OTLP receiver over
gRPC (opentelemetry-proto on grpcio) with GenAI attributes. Off unless asked for."""

import json
import signal
import threading
import time
from concurrent import futures

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from vllmgateway.v1 import chat_pb2, service_pb2_grpc

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
SERVER, CLIENT = 2, 3  # opentelemetry.proto.trace.v1.Span.SpanKind
STATUS_ERROR = 2


def chat(max_tokens=5, sim=None):
    request = chat_pb2.ChatCompletionRequest(model="sim-model", max_tokens=max_tokens,
                                             messages=[chat_pb2.ChatMessage(role="user", text="trace me")])
    if sim:
        request.extra_body.update({"vllm_sim": sim})
    return request


def attribute_value(value):
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [attribute_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace receiver that keeps every span it is sent."""

    def __init__(self):
        self.spans = []
        self.resources = []
        self.lock = threading.Lock()

    def Export(self, request, context):
        with self.lock:
            for resource_spans in request.resource_spans:
                resource = {a.key: attribute_value(a.value) for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.resources.append(resource)
                        self.spans.append(span)
        return trace_service_pb2.ExportTraceServiceResponse()

    def wait_for(self, count, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.spans) >= count:
                    return list(self.spans)
            time.sleep(0.05)
        with self.lock:
            return list(self.spans)


@pytest.fixture
def receiver():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    receiver = Receiver()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    receiver.port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield receiver
    server.stop(0)


def otel_env(receiver, delay_ms=100):
    return {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.port}",
            "OTEL_BSP_SCHEDULE_DELAY": str(delay_ms),
            "OTEL_SERVICE_NAME": "gateway-under-test"}


def traced_gateway(start_server, sim, tmp_path, receiver, delay_ms=100):
    log = tmp_path / "access.jsonl"
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps({"upstreams": [{"name": "sim-1", "url": f"http://{sim.address}"}],
                                  "access_log": str(log)}))
    gateway = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--config", str(config),
                           env=otel_env(receiver, delay_ms))
    return gateway, log


def attributes(span):
    return {a.key: attribute_value(a.value) for a in span.attributes}


def one(spans, kind):
    found = [s for s in spans if s.kind == kind]
    assert len(found) == 1, spans
    return found[0]


def test_a_call_continues_the_callers_trace_through_the_gateway_into_vllm(sim, start_server, tmp_path, receiver):
    gateway, log = traced_gateway(start_server, sim, tmp_path, receiver)
    traceparent = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
    with grpc.insecure_channel(gateway.address) as channel:
        reply = service_pb2_grpc.VLLMServiceStub(channel).CreateChatCompletion(
            chat(), metadata=[("traceparent", traceparent), ("x-request-id", "req-42")], timeout=5)
    sent = sim.stats()["last_headers"]
    spans = receiver.wait_for(2)
    assert len(spans) == 2, spans
    server, client = one(spans, SERVER), one(spans, CLIENT)
    # One trace from the caller through the gateway to vLLM.
    assert server.trace_id.hex() == client.trace_id.hex() == CALLER_TRACE
    assert server.parent_span_id.hex() == CALLER_SPAN
    assert client.parent_span_id == server.span_id
    assert sent["traceparent"] == f"00-{CALLER_TRACE}-{client.span_id.hex()}-01"
    assert sent["x-request-id"] == "req-42"
    assert server.name == "vllmgateway.v1.VLLMService/CreateChatCompletion"
    assert attributes(server) == {"rpc.system": "grpc", "rpc.service": "vllmgateway.v1.VLLMService",
                                  "rpc.method": "CreateChatCompletion", "rpc.grpc.status_code": 0}
    assert client.name == "chat sim-model"
    client_attributes = attributes(client)
    assert client_attributes == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "vllm", "gen_ai.request.model": "sim-model",
        "url.path": "/v1/chat/completions", "server.address": "sim-1",
        "gen_ai.usage.input_tokens": reply.usage.prompt_tokens, "gen_ai.usage.output_tokens": 5,
        "gen_ai.response.finish_reasons": [reply.choices[0].finish_reason]}
    assert reply.choices[0].finish_reason == "length"
    assert server.start_time_unix_nano <= client.start_time_unix_nano <= client.end_time_unix_nano \
        <= server.end_time_unix_nano
    assert {r["service.name"] for r in receiver.resources} == {"gateway-under-test"}
    # The access log names the same trace.
    entry = json.loads(log.read_text().splitlines()[0]) if log.exists() and log.read_text() else None
    deadline = time.monotonic() + 3
    while entry is None and time.monotonic() < deadline:
        time.sleep(0.05)
        entry = json.loads(log.read_text().splitlines()[0]) if log.exists() and log.read_text() else None
    assert entry["trace_id"] == CALLER_TRACE


def test_a_stream_without_a_traceparent_starts_a_new_trace(sim, start_server, tmp_path, receiver):
    gateway, _ = traced_gateway(start_server, sim, tmp_path, receiver)
    with grpc.insecure_channel(gateway.address) as channel:
        chunks = list(service_pb2_grpc.VLLMServiceStub(channel).StreamChatCompletion(chat(max_tokens=3), timeout=5))
    sent = sim.stats()["last_headers"]
    spans = receiver.wait_for(2)
    server, client = one(spans, SERVER), one(spans, CLIENT)
    assert server.parent_span_id == b"" and len(server.trace_id.hex()) == 32
    assert client.trace_id == server.trace_id and client.parent_span_id == server.span_id
    assert sent["traceparent"] == f"00-{server.trace_id.hex()}-{client.span_id.hex()}-01"
    client_attributes = attributes(client)
    assert client_attributes["gen_ai.usage.output_tokens"] == chunks[-1].usage.completion_tokens == 3
    assert client_attributes["gen_ai.response.finish_reasons"] == ["length"]
    assert server.name == "vllmgateway.v1.VLLMService/StreamChatCompletion"


def test_an_upstream_failure_marks_both_spans(sim, start_server, tmp_path, receiver):
    gateway, _ = traced_gateway(start_server, sim, tmp_path, receiver)
    with grpc.insecure_channel(gateway.address) as channel:
        with pytest.raises(grpc.RpcError) as failure:
            service_pb2_grpc.VLLMServiceStub(channel).CreateChatCompletion(
                chat(sim={"fault": "http_error", "status": 503}), timeout=5)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    spans = receiver.wait_for(2)
    server, client = one(spans, SERVER), one(spans, CLIENT)
    assert server.status.code == STATUS_ERROR and attributes(server)["rpc.grpc.status_code"] == 14
    assert attributes(server)["error.type"] == "UNAVAILABLE"
    assert client.status.code == STATUS_ERROR and attributes(client)["error.type"] == "503"


def test_a_stream_that_moves_shows_the_move_and_both_upstream_requests(sim, start_server, tmp_path, receiver):
    """A stream whose upstream drops it part way moves to the other: the call's span has an event for
    the move, and each upstream request its own client span, the failed one marked as an error."""
    from conftest import Simulator
    other = Simulator("vllm-sim", ["--port", "{port}"], tmp_path / "other-sim.log")
    try:
        config = tmp_path / "gateway.json"
        config.write_text(json.dumps({"upstreams": [{"name": "sim-1", "url": f"http://{sim.address}"},
                                                    {"name": "sim-2", "url": f"http://{other.address}"}]}))
        gateway = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--config", str(config),
                               env=otel_env(receiver))
        with grpc.insecure_channel(gateway.address) as channel:
            chunks = list(service_pb2_grpc.VLLMServiceStub(channel).StreamChatCompletion(
                chat(max_tokens=12, sim={"fault": "drop", "after": 5}), timeout=10))
    finally:
        other.stop()
    assert chunks[-1].usage.completion_tokens == 12
    spans = receiver.wait_for(3)
    server = one(spans, SERVER)
    clients = sorted((s for s in spans if s.kind == CLIENT), key=lambda s: s.start_time_unix_nano)
    assert len(clients) == 2, spans
    assert clients[0].status.code == STATUS_ERROR and clients[1].status.code != STATUS_ERROR
    assert {attributes(c)["server.address"] for c in clients} == {"sim-1", "sim-2"}
    assert all(c.parent_span_id == server.span_id for c in clients)
    assert attributes(server)["rpc.grpc.status_code"] == 0
    moves = [event for event in server.events if event.name == "vllm_grpc_gateway.stream_moved"]
    assert len(moves) == 1, server.events
    move = {a.key: attribute_value(a.value) for a in moves[0].attributes}
    # Five chunks went out before the drop: the role chunk and four tokens.
    assert move["gen_ai.usage.output_tokens"] == 4 and "closed the connection" in move["error.message"], move


def test_an_unsampled_caller_is_not_exported_but_its_trace_still_reaches_vllm(sim, start_server, tmp_path, receiver):
    gateway, _ = traced_gateway(start_server, sim, tmp_path, receiver)
    with grpc.insecure_channel(gateway.address) as channel:
        service_pb2_grpc.VLLMServiceStub(channel).CreateChatCompletion(
            chat(), metadata=[("traceparent", f"00-{CALLER_TRACE}-{CALLER_SPAN}-00")], timeout=5)
    sent = sim.stats()["last_headers"]["traceparent"]
    assert sent.startswith(f"00-{CALLER_TRACE}-") and sent.endswith("-00") and CALLER_SPAN not in sent
    time.sleep(0.6)  # six export rounds at 100 ms
    assert receiver.spans == []


def test_spans_of_the_last_calls_are_flushed_when_the_gateway_stops(sim, start_server, tmp_path, receiver):
    # Exports only every 60 s: the spans can only arrive through the flush at shutdown.
    gateway, _ = traced_gateway(start_server, sim, tmp_path, receiver, delay_ms=60_000)
    with grpc.insecure_channel(gateway.address) as channel:
        for _ in range(3):
            service_pb2_grpc.VLLMServiceStub(channel).CreateChatCompletion(chat(max_tokens=1), timeout=5)
    time.sleep(0.3)
    assert receiver.spans == []
    gateway.signal(signal.SIGTERM)
    assert gateway.process.wait(timeout=15) == 0, gateway.log()
    assert len(receiver.wait_for(6, timeout=2)) == 6


def test_tracing_is_off_without_otel_settings_and_the_callers_context_passes_through(sim, start_server, tmp_path):
    gateway = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--upstream", f"http://{sim.address}")
    traceparent = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
    with grpc.insecure_channel(gateway.address) as channel:
        service_pb2_grpc.VLLMServiceStub(channel).CreateChatCompletion(
            chat(), metadata=[("traceparent", traceparent)], timeout=5)
    assert sim.stats()["last_headers"]["traceparent"] == traceparent
    assert "tracing" not in gateway.log()


@pytest.mark.parametrize("setting,message", [
    ({"OTEL_PROPAGATORS": "tracecontext,b3"}, "OTEL_PROPAGATORS"),
    ({"OTEL_TRACES_SAMPLER": "xray"}, "OTEL_TRACES_SAMPLER=xray"),
])
def test_unsupported_otel_settings_refuse_to_start_with_a_reason(sim, tmp_path, setting, message):
    import subprocess
    from conftest import BIN_DIR
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", **setting}
    import os
    result = subprocess.run([str(BIN_DIR / "vllm-grpc-gateway"), "--listen", "127.0.0.1:0",
                             "--upstream", f"http://{sim.address}"],
                            env={**os.environ, **env}, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert message in result.stderr + result.stdout
