"""The Responses RPCs on an upstream without /v1/responses: the gateway notices the missing route
(404 without a vLLM error type), converts to chat completions and back, remembers, and rebuilds
the Responses event stream from chat chunks."""

import grpc
import pytest

from conftest import ServerProcess, Simulator
from vllmgateway.v1 import responses_pb2, service_pb2_grpc


@pytest.fixture(scope="module")
def plain_sim(tmp_path_factory):
    server = Simulator("vllm-sim", ["--port", "{port}", "--no-responses"], tmp_path_factory.mktemp("sim") / "log")
    yield server
    server.stop()


def gateway_stub(plain_sim, tmp_path, mode):
    gateway = ServerProcess("vllm-grpc-gateway", ["--listen", "127.0.0.1:{port}", "--upstream",
                                                  f"http://{plain_sim.address}", "--responses-mode", mode],
                            tmp_path / f"gateway-{mode}.log")
    channel = grpc.insecure_channel(gateway.address)
    return gateway, channel, service_pb2_grpc.VLLMServiceStub(channel)


def test_auto_mode_falls_back_once_and_remembers(plain_sim, tmp_path):
    plain_sim.reset()
    gateway, channel, vllm = gateway_stub(plain_sim, tmp_path, "auto")
    try:
        request = responses_pb2.ResponseRequest(model="sim-model", input_text="Hi there", instructions="Be brief",
                                                max_output_tokens=4)
        first = vllm.CreateResponse(request, timeout=10)
        assert first.object == "response" and first.status == "incomplete"
        assert first.id.startswith("resp_")
        text = first.output[0].message.parts.values[0].output_text.text
        assert text and first.usage.output_tokens == 4
        sent = plain_sim.stats()["last_request"]
        assert sent["messages"] == [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi there"}]
        assert sent["max_completion_tokens"] == 4
        vllm.CreateResponse(request, timeout=10)
        paths = plain_sim.stats()["by_path"]
        assert paths["/v1/responses"] == 1, "the gateway should remember that /v1/responses is missing"
        assert paths["/v1/chat/completions"] == 2
    finally:
        channel.close()
        gateway.stop()


def test_streamed_responses_rebuilt_from_chat_chunks(plain_sim, tmp_path):
    plain_sim.reset()
    gateway, channel, vllm = gateway_stub(plain_sim, tmp_path, "chat")
    try:
        request = responses_pb2.ResponseRequest(input_text="Stream please", max_output_tokens=5)
        unary = vllm.CreateResponse(request, timeout=10)
        events = list(vllm.StreamResponse(request, timeout=10))
        kinds = [e.WhichOneof("variant") for e in events]
        assert kinds[:4] == ["response_created", "response_in_progress", "response_output_item_added",
                             "response_content_part_added"]
        assert kinds[-4:] == ["response_output_text_done", "response_content_part_done", "response_output_item_done",
                              "response_completed"]
        deltas = "".join(e.response_output_text_delta.delta for e in events if e.HasField("response_output_text_delta"))
        assert deltas == unary.output[0].message.parts.values[0].output_text.text
        completed = events[-1].response_completed.response
        assert completed.status == "incomplete" and completed.usage.output_tokens == 5
        numbers = [getattr(e, e.WhichOneof("variant")).sequence_number for e in events]
        assert numbers == list(range(len(events)))
        assert "/v1/responses" not in plain_sim.stats()["by_path"], "chat mode never tries the native route"
    finally:
        channel.close()
        gateway.stop()


def test_native_mode_reports_the_missing_route(plain_sim, tmp_path):
    gateway, channel, vllm = gateway_stub(plain_sim, tmp_path, "native")
    try:
        with pytest.raises(grpc.RpcError) as error:
            vllm.CreateResponse(responses_pb2.ResponseRequest(input_text="x"), timeout=10)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        channel.close()
        gateway.stop()


def test_tools_and_items_convert_to_chat(plain_sim, tmp_path):
    gateway, channel, vllm = gateway_stub(plain_sim, tmp_path, "chat")
    try:
        request = responses_pb2.ResponseRequest(tool_choice_mode="auto", max_output_tokens=2)
        items = request.input_items.values
        items.add(message=responses_pb2.ResponseMessage(role="user", text="Weather in Paris?"))
        items.add(function_call=responses_pb2.ResponseFunctionCall(call_id="call_1", name="get_weather",
                                                                   arguments='{"city":"Paris"}'))
        items.add(function_call_output=responses_pb2.ResponseFunctionCallOutput(call_id="call_1", output="sunny"))
        tool = request.tools.add()
        tool.update({"type": "function", "name": "get_weather", "parameters": {"type": "object"}})
        vllm.CreateResponse(request, timeout=10)
        sent = plain_sim.stats()["last_request"]
        assert sent["messages"] == [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
                                                  "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]
        assert sent["tools"] == [{"type": "function", "function": {"name": "get_weather",
                                                                   "parameters": {"type": "object"}}}]
        assert sent["tool_choice"] == "auto"
    finally:
        channel.close()
        gateway.stop()
