"""The vLLM RPCs of VLLMService through the gateway, against vllm-sim, with stubs generated from
proto/ by grpcio-tools: unary and streaming chat, completions and Responses, upstream errors and
their statuses, cancellation reaching the upstream, deadlines, and slow readers."""

import threading
import time

import grpc
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2

from vllmgateway.v1 import chat_pb2, common_pb2, completions_pb2, responses_pb2, unsupported_pb2


def chat(text="Hello there", max_tokens=5, sim=None, **fields):
    request = chat_pb2.ChatCompletionRequest(model="sim-model",
                                             messages=[chat_pb2.ChatMessage(role="user", text=text)],
                                             max_tokens=max_tokens, **fields)
    if sim is not None:
        request.extra_body.update({"vllm_sim": sim})
    return request


def status_details(error):
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            info = error_details_pb2.ErrorInfo()
            assert status.details[0].Unpack(info)
            return status, info
    raise AssertionError("no grpc-status-details-bin trailer")


def test_unary_chat(vllm, sim):
    reply = vllm.CreateChatCompletion(chat(max_tokens=6), timeout=10)
    assert reply.object == "chat.completion" and reply.id.startswith("chatcmpl-")
    assert reply.model == "sim-model"
    [choice] = reply.choices
    assert choice.message.role == "assistant" and len(choice.message.content) > 0
    assert choice.finish_reason == "length"
    assert reply.usage.completion_tokens == 6
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 6
    assert reply.system_fingerprint.startswith("vllm-")


def test_same_prompt_same_answer_and_streaming_matches_unary(vllm):
    unary = vllm.CreateChatCompletion(chat("Deterministic?", max_tokens=8), timeout=10)
    chunks = list(vllm.StreamChatCompletion(chat("Deterministic?", max_tokens=8), timeout=10))
    text = "".join(c.choices[0].delta.content for c in chunks if c.choices)
    assert text == unary.choices[0].message.content


def test_streaming_chat_delivers_every_chunk_and_the_usage(vllm):
    chunks = list(vllm.StreamChatCompletion(chat(max_tokens=4), timeout=10))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks[1:-1]] == ["", "", "", "length"]
    # The gateway asks for the usage when the client did not: it is always delivered last.
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 4
    assert all(c.id == chunks[0].id for c in chunks)


def test_streaming_chunks_arrive_as_they_are_generated(vllm):
    request = chat(max_tokens=5, sim={"tokens_per_second": 10, "ttft_ms": 0})
    arrivals = []
    for _ in vllm.StreamChatCompletion(request, timeout=10):
        arrivals.append(time.monotonic())
    # Five tokens at 10/s take 0.4 s; relayed one by one, the chunks are spread over it.
    assert arrivals[-2] - arrivals[1] > 0.25


def test_model_may_be_given_as_vllm_slash_model_and_parameters_pass_through(vllm, sim):
    request = chat(max_tokens=2, temperature=0.5, top_k=7, stop_strings=common_pb2.StringList(values=["x", "y"]),
                   seed=42)
    request.model = "vllm/sim-model"
    request.logit_bias["50256"] = -100
    request.extra_body.update({"new_vllm_knob": {"depth": 3}})
    vllm.CreateChatCompletion(request, timeout=10)
    sent = sim.stats()["last_request"]
    assert sent["model"] == "sim-model"
    assert sent["temperature"] == 0.5 and sent["top_k"] == 7 and sent["seed"] == 42
    assert sent["stop"] == ["x", "y"]
    assert sent["logit_bias"] == {"50256": -100}
    assert sent["new_vllm_knob"] == {"depth": 3}
    assert sent["messages"] == [{"role": "user", "content": "Hello there"}]
    assert "stream" not in sent or sent["stream"] is False


def test_content_parts_and_tool_choice_reach_vllm_as_json(vllm, sim):
    request = chat_pb2.ChatCompletionRequest(messages=[chat_pb2.ChatMessage(role="user", parts=chat_pb2.ContentPartList(values=[
        chat_pb2.ContentPart(text=chat_pb2.TextPart(text="What is this?")),
        chat_pb2.ContentPart(image_url=chat_pb2.ImageUrlPart(image_url=chat_pb2.ImageUrl(url="data:image/png;base64,AA==")))]))],
        tool_choice_mode="auto", max_tokens=1)
    tool = request.tools.add(type="function")
    tool.function.name = "get_weather"
    tool.function.parameters.update({"type": "object", "properties": {"city": {"type": "string"}}})
    vllm.CreateChatCompletion(request, timeout=10)
    sent = sim.stats()["last_request"]
    assert sent["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]
    assert sent["tool_choice"] == "auto"
    assert sent["tools"][0]["function"]["parameters"]["properties"]["city"] == {"type": "string"}


def test_completions_unary_and_streaming(vllm):
    request = completions_pb2.CompletionRequest(model="sim-model", prompt_text="Once upon", max_tokens=3)
    reply = vllm.CreateCompletion(request, timeout=10)
    assert reply.object == "text_completion" and reply.choices[0].finish_reason == "length"
    chunks = list(vllm.StreamCompletion(request, timeout=10))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == reply.choices[0].text
    assert chunks[-1].usage.completion_tokens == 3


def test_prompt_as_token_ids(vllm, sim):
    request = completions_pb2.CompletionRequest(prompt_token_ids=common_pb2.TokenIds(values=[1, 2, 3]), max_tokens=1)
    vllm.CreateCompletion(request, timeout=10)
    assert sim.stats()["last_request"]["prompt"] == [1, 2, 3]


def test_responses_unary_and_streaming(vllm):
    request = responses_pb2.ResponseRequest(model="sim-model", input_text="Hi", max_output_tokens=3)
    reply = vllm.CreateResponse(request, timeout=10)
    assert reply.object == "response" and reply.status == "incomplete"
    assert reply.output[0].message.parts.values[0].output_text.text
    events = list(vllm.StreamResponse(request, timeout=10))
    kinds = [e.WhichOneof("variant") for e in events]
    assert kinds[0] == "response_created" and kinds[-1] == "response_completed"
    deltas = "".join(e.response_output_text_delta.delta for e in events if e.HasField("response_output_text_delta"))
    assert deltas == reply.output[0].message.parts.values[0].output_text.text
    assert [e.WhichOneof("variant") and getattr(e, e.WhichOneof("variant")).sequence_number for e in events] == \
        list(range(len(events)))


@pytest.mark.parametrize("http_status,code", [
    (400, grpc.StatusCode.INVALID_ARGUMENT), (401, grpc.StatusCode.UNAUTHENTICATED),
    (403, grpc.StatusCode.PERMISSION_DENIED), (404, grpc.StatusCode.NOT_FOUND),
    (429, grpc.StatusCode.RESOURCE_EXHAUSTED), (500, grpc.StatusCode.INTERNAL),
    (501, grpc.StatusCode.UNIMPLEMENTED), (502, grpc.StatusCode.UNAVAILABLE), (503, grpc.StatusCode.UNAVAILABLE),
    (504, grpc.StatusCode.DEADLINE_EXCEEDED)])
def test_upstream_http_errors_map_to_grpc_statuses(vllm, http_status, code):
    for rpc in (vllm.CreateChatCompletion, lambda r, timeout: list(vllm.StreamChatCompletion(r, timeout=timeout))):
        with pytest.raises(grpc.RpcError) as error:
            rpc(chat(sim={"fault": "http_error", "status": http_status, "message": f"failure {http_status}"}), timeout=10)
        assert error.value.code() == code
        status, info = status_details(error.value)
        assert status.code == code.value[0]
        assert info.domain == "vllm" and info.metadata["http_status"] == str(http_status)
        if http_status != 401:
            assert error.value.details() == f"failure {http_status}"


def test_unknown_model_is_not_found_with_vllm_error_details(vllm):
    with pytest.raises(grpc.RpcError) as error:
        vllm.CreateChatCompletion(chat_pb2.ChatCompletionRequest(
            model="gpt-4o", messages=[chat_pb2.ChatMessage(role="user", text="x")]), timeout=10)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert "gpt-4o" in error.value.details()
    status, info = status_details(error.value)
    assert info.reason == "NOT_FOUND_ERROR"
    assert info.metadata["type"] == "NotFoundError" and info.metadata["param"] == "model"


def test_error_object_in_an_http_200_body(vllm):
    with pytest.raises(grpc.RpcError) as error:
        vllm.CreateChatCompletion(chat(sim={"fault": "error_200", "status": 400, "message": "bad schema"}), timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and error.value.details() == "bad schema"


def test_error_event_mid_stream_ends_the_call_after_the_chunks_sent(vllm):
    received = []
    with pytest.raises(grpc.RpcError) as error:
        for chunk in vllm.StreamChatCompletion(chat(max_tokens=8, sim={"fault": "stream_error", "after": 3,
                                                                         "status": 500, "message": "engine died"}),
                                               timeout=10):
            received.append(chunk)
    assert len(received) == 3
    assert error.value.code() == grpc.StatusCode.INTERNAL and error.value.details() == "engine died"


@pytest.mark.parametrize("fault", ["truncate", "drop"])
def test_a_stream_cut_short_is_never_ok(vllm, fault):
    with pytest.raises(grpc.RpcError) as error:
        list(vllm.StreamChatCompletion(chat(max_tokens=8, sim={"fault": fault, "after": 2}), timeout=10))
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE


def test_responses_stream_cut_before_its_terminal_event_is_never_ok(vllm):
    request = responses_pb2.ResponseRequest(input_text="Hi", max_output_tokens=4)
    request.extra_body.update({"vllm_sim": {"fault": "truncate", "after": 3}})
    with pytest.raises(grpc.RpcError) as error:
        list(vllm.StreamResponse(request, timeout=10))
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE


def test_deadline_bounds_the_upstream_request(vllm, sim):
    sim.reset()
    with pytest.raises(grpc.RpcError) as error:
        list(vllm.StreamChatCompletion(chat(max_tokens=8, sim={"fault": "stall", "after": 2}), timeout=0.5))
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert wait_for(lambda: sim.stats()["aborted"] == 1), sim.stats()


def test_client_cancel_closes_the_upstream_request_at_once(vllm, sim):
    sim.reset()
    stream = vllm.StreamChatCompletion(chat(max_tokens=500, sim={"tokens_per_second": 50}), timeout=30)
    next(stream)
    next(stream)
    stream.cancel()
    assert wait_for(lambda: sim.stats()["aborted"] == 1, timeout=2), sim.stats()
    assert sim.stats()["completed"] == 0


def test_unary_cancel_closes_the_upstream_request(vllm, sim):
    sim.reset()
    future = vllm.CreateChatCompletion.future(chat(max_tokens=100, sim={"tokens_per_second": 20}), timeout=30)
    time.sleep(0.3)
    future.cancel()
    assert wait_for(lambda: sim.stats()["aborted"] == 1, timeout=2), sim.stats()


def test_slow_reader_holds_the_upstream_back(gateway, sim):
    """A reader that takes nothing: HTTP/2 flow control stops the gateway, and the gateway stops
    reading vLLM's stream, so its memory stays flat while vLLM would send 50 MB."""
    from h2client import RawClient, grpc_frame
    request = chat(max_tokens=200_000, sim={"tokens_per_second": 0})
    rss_before = rss_mib(gateway.process.pid)
    client = RawClient(gateway.port)
    client.conn.update_settings({})
    stream_id = client.start("/vllmgateway.v1.VLLMService/StreamChatCompletion")
    client.send(stream_id, grpc_frame(request.SerializeToString()), end_stream=True)
    time.sleep(2)  # read nothing
    grown = rss_mib(gateway.process.pid) - rss_before
    assert grown < 40, f"gateway grew {grown:.0f} MiB for a reader that reads nothing"
    client.reset(stream_id)
    client.close()


def test_unreachable_upstream_is_unavailable(start_server):
    gateway = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--upstream", "http://127.0.0.1:9")
    channel = grpc.insecure_channel(gateway.address)
    from vllmgateway.v1 import service_pb2_grpc
    with pytest.raises(grpc.RpcError) as error:
        service_pb2_grpc.VLLMServiceStub(channel).CreateChatCompletion(chat(), timeout=10)
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    channel.close()


@pytest.mark.parametrize("rpc,request_type,what", [
    ("CreateImage", unsupported_pb2.ImageGenerationRequest, "image generation"),
    ("CreateSpeech", unsupported_pb2.SpeechRequest, "speech synthesis"),
    ("UploadFile", unsupported_pb2.UploadFileRequest, "files"),
    ("ListFiles", unsupported_pb2.ListFilesRequest, "files"),
    ("CreateBatch", unsupported_pb2.CreateBatchRequest, "batch")])
def test_operations_vllm_lacks_are_unimplemented(vllm, rpc, request_type, what):
    with pytest.raises(grpc.RpcError) as error:
        getattr(vllm, rpc)(request_type(), timeout=5)
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "vLLM does not provide" in error.value.details() and what in error.value.details()


def wait_for(predicate, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_request_id_and_trace_context_reach_vllm(vllm, sim):
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    vllm.CreateChatCompletion(chat(max_tokens=1), timeout=10, metadata=[
        ("x-request-id", "my-trace-123"), ("traceparent", traceparent), ("tracestate", "vendor=1"),
        ("x-unrelated", "stays here")])
    headers = sim.stats()["last_headers"]
    assert headers["x-request-id"] == "my-trace-123"
    assert headers["traceparent"] == traceparent and headers["tracestate"] == "vendor=1"
    assert "x-unrelated" not in headers
    list(vllm.StreamChatCompletion(chat(max_tokens=1), timeout=10, metadata=[("x-request-id", "stream-7")]))
    assert sim.stats()["last_headers"]["x-request-id"] == "stream-7"


def test_metadata_values_repeated_on_one_connection_stay_each_calls_own(vllm, sim):
    # The gateway shares a String between calls of one connection that repeat a value: values of
    # one length differing in one byte, more of them than it keeps, and repeats after others.
    ids = [f"request-{n:016d}" for n in (1, 2, 1, 3, 4, 5, 6, 7, 2, 1)]
    for request_id in ids:
        vllm.CreateChatCompletion(chat(max_tokens=1), timeout=10, metadata=[("x-request-id", request_id)])
        assert sim.stats()["last_headers"]["x-request-id"] == request_id
