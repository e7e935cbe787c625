"""One trace from the caller through the gateway into a real vLLM: the gateway (tracing on through
the OTEL_* variables) continues the caller's traceparent, and vLLM (started by tools/real-vllm with
--otlp-traces-endpoint) makes its llm_request span a child of the gateway's upstream span. Both send
their spans to the same OTLP/gRPC receiver (otlp_receiver.py), which writes them to REAL_VLLM_SPANS."""

import json
import os
import time
from pathlib import Path

import grpc

from gateway_harness import servers

from vllmgateway.v1 import chat_pb2, service_pb2_grpc  # noqa: E402

CHAT_2 = os.environ["REAL_VLLM_CHAT_2"]
SPANS = Path(os.environ["REAL_VLLM_SPANS"])
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def spans_of(trace_id, count, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        found = [json.loads(line) for line in (SPANS.read_text().splitlines() if SPANS.exists() else [])]
        found = [span for span in found if span["trace_id"] == trace_id]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_vllms_span_is_a_child_of_the_gateways_upstream_span(tmp_path):
    gateway = servers.ServerProcess(
        "vllm-grpc-gateway", ["--listen", "127.0.0.1:{port}", "--upstream", CHAT_2], tmp_path / "gateway.log",
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": os.environ["REAL_VLLM_OTLP"], "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
             "OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_SERVICE_NAME": "vllm-grpc-gateway-real-test"})
    try:
        with grpc.insecure_channel(gateway.address) as channel:
            request = chat_pb2.ChatCompletionRequest(
                model="tiny-llama", max_tokens=4, temperature=0.0,
                messages=[chat_pb2.ChatMessage(role="user", text="Trace this call.")])
            reply = service_pb2_grpc.VLLMServiceStub(channel).CreateChatCompletion(
                request, metadata=[("traceparent", f"00-{TRACE}-{CALLER_SPAN}-01")], timeout=120)
        spans = spans_of(TRACE, 3)
    finally:
        gateway.stop()
    by_name = {span["name"]: span for span in spans}
    assert set(by_name) == {"vllmgateway.v1.VLLMService/CreateChatCompletion", "chat tiny-llama", "llm_request"}, spans
    server, client = by_name["vllmgateway.v1.VLLMService/CreateChatCompletion"], by_name["chat tiny-llama"]
    vllm = by_name["llm_request"]
    assert server["parent_span_id"] == CALLER_SPAN and server["service"] == "vllm-grpc-gateway-real-test"
    assert client["parent_span_id"] == server["span_id"]
    assert vllm["parent_span_id"] == client["span_id"]
    # vLLM and the gateway count the same tokens.
    assert vllm["attributes"]["gen_ai.usage.completion_tokens"] == client["attributes"]["gen_ai.usage.output_tokens"] \
        == reply.usage.completion_tokens
    assert vllm["attributes"]["gen_ai.usage.prompt_tokens"] == client["attributes"]["gen_ai.usage.input_tokens"] \
        == reply.usage.prompt_tokens
