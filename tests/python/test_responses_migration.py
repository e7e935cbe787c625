"""Streamed Responses calls that survive a dying replica: a StreamResponse whose vLLM fails part way
(killed, silent, an engine error event, a cut connection) goes on on another replica through chat
completions (vLLM's /v1/responses cannot continue a message), and the client gets exactly the
events of an uninterrupted run: the same text, the same response and item ids, sequence numbers
with no gap, done events with the full text and one response.completed whose usage counts every
token. What cannot be continued exactly fails as it always did."""

import signal

import grpc
import pytest

from test_stream_migration import (  # noqa: F401 (sims is a fixture)
    MID_STREAM_FAULTS, metric, migrated_lines, serving, set_health, sims, start_gateway, stub)
from vllmgateway.v1 import responses_pb2

QUESTION = "Tell me a long story about a fox and the stars"
TOKENS = 40
MIGRATIONS = "vllm_grpc_gateway_stream_migrations_total"


def response_request(pace=None, fault=None, text=None, **fields):
    request = responses_pb2.ResponseRequest(input_text=QUESTION, max_output_tokens=TOKENS, temperature=0, **fields)
    if text:
        request.text.update(text)
    sim = {**({"tokens_per_second": pace} if pace else {}), **(fault or {})}
    if sim:
        request.extra_body.update({"vllm_sim": sim})
    return request


def body(event):
    return getattr(event, event.WhichOneof("variant"))


def kinds(events):
    return [event.WhichOneof("variant") for event in events]


def of_kind(events, kind):
    return [getattr(event, kind) for event in events if event.WhichOneof("variant") == kind]


def delta_text(events):
    return "".join(delta.delta for delta in of_kind(events, "response_output_text_delta"))


def message_text(item):
    return "".join(part.output_text.text for part in item.message.parts.values)


def assert_like_uninterrupted(events, expected):
    """The client's events are those of an uninterrupted run, but for the ids vLLM makes up."""
    assert kinds(events) == kinds(expected)
    text = delta_text(expected)
    assert delta_text(events) == text
    assert [body(event).sequence_number for event in events] == list(range(len(events)))
    response_ids = {body(event).response.id for event in events if hasattr(body(event), "response")}
    assert len(response_ids) == 1, response_ids
    item_ids = {body(event).item_id for event in events if hasattr(body(event), "item_id")}
    item_ids |= {item.item.message.id for item in of_kind(events, "response_output_item_added")}
    assert len(item_ids) == 1, item_ids
    assert {(body(event).output_index, body(event).content_index) for event in events
            if hasattr(body(event), "content_index")} == {(0, 0)}
    [done] = of_kind(events, "response_output_text_done")
    assert done.text == text
    [part] = of_kind(events, "response_content_part_done")
    assert part.part.output_text.text == text
    [item] = of_kind(events, "response_output_item_done")
    assert message_text(item.item) == text and item.item.message.id in item_ids
    [completed] = of_kind(events, "response_completed")
    response, expected_response = completed.response, of_kind(expected, "response_completed")[0].response
    assert response.status == expected_response.status == "incomplete"
    assert [message_text(output) for output in response.output] == [text]
    assert response.usage.output_tokens == TOKENS
    assert response.usage.input_tokens == expected_response.usage.input_tokens
    assert response.usage.total_tokens == expected_response.usage.total_tokens


def test_a_replica_killed_mid_stream_is_invisible_to_the_client(sims, start_server, tmp_path):
    replicas = [sims("a"), sims("b")]
    gateway = start_gateway(start_server, tmp_path, replicas)
    vllm = stub(gateway)
    expected = list(vllm.StreamResponse(response_request(), timeout=30))
    events = []
    stream = vllm.StreamResponse(response_request(pace=40), timeout=30)
    for event in stream:
        events.append(event)
        if len(of_kind(events, "response_output_text_delta")) == 10 and kinds(events)[-1].endswith("delta"):
            victim = serving(replicas)
            victim.process.send_signal(signal.SIGKILL)
            victim.process.wait()
    assert stream.code() == grpc.StatusCode.OK
    assert_like_uninterrupted(events, expected)
    assert metric(gateway, MIGRATIONS) == 1
    migrated = migrated_lines(gateway)
    assert len(migrated) == 1 and migrated[0]["status"] == "OK", migrated
    assert migrated[0]["completion_tokens"] == TOKENS
    assert migrated[0]["prompt_tokens"] == of_kind(expected, "response_completed")[0].response.usage.input_tokens


# A fault `after` N events cuts the Responses stream after its 4 opening events and N - 4 deltas.
# The continuation is a chat stream, whose only opening chunk is its role: the simulator places the
# same fault 3 tokens into it, and the second continuation passes it. So each fault moves twice
# (a stream never goes back to an upstream it was on: three replicas), which also shows the events
# carrying on across two moves.
@pytest.mark.parametrize("fault", MID_STREAM_FAULTS, ids=lambda fault: fault["fault"])
def test_each_mid_stream_failure_moves_the_stream(sims, start_server, tmp_path, fault):
    replicas = [sims("a"), sims("b"), sims("c")]
    gateway = start_gateway(start_server, tmp_path, replicas, None, "--upstream-stall-timeout", "0.5")
    vllm = stub(gateway)
    expected = list(vllm.StreamResponse(response_request(), timeout=30))
    events = list(vllm.StreamResponse(response_request(fault=fault), timeout=30))
    assert_like_uninterrupted(events, expected)
    paths = [sim.stats()["by_path"] for sim in replicas]
    assert sum(path.get("/v1/responses", 0) for path in paths) == 2  # uninterrupted + failed
    assert sum(path.get("/v1/chat/completions", 0) for path in paths) == 2  # failed again + finished
    assert metric(gateway, MIGRATIONS) == 2
    # The access log counts each token once, though each continuation's prompt held the ones before.
    migrated = migrated_lines(gateway)
    assert len(migrated) == 1 and migrated[0]["migrations"] == 2, migrated
    assert migrated[0]["completion_tokens"] == TOKENS
    assert migrated[0]["prompt_tokens"] == of_kind(expected, "response_completed")[0].response.usage.input_tokens


def test_a_stream_served_through_chat_moves_too(sims, start_server, tmp_path):
    replicas = [sims("a", "--no-responses"), sims("b", "--no-responses")]
    gateway = start_gateway(start_server, tmp_path, replicas, None, "--responses-mode", "chat")
    vllm = stub(gateway)
    expected = list(vllm.StreamResponse(response_request(), timeout=30))
    events = list(vllm.StreamResponse(response_request(fault={"fault": "drop", "after": 12}), timeout=30))
    assert_like_uninterrupted(events, expected)
    assert sum(sim.stats()["by_path"].get("/v1/chat/completions", 0) for sim in replicas) == 3
    assert metric(gateway, MIGRATIONS) == 1


def test_with_migration_off_the_call_fails_as_before(sims, start_server, tmp_path):
    replicas = [sims("a"), sims("b")]
    gateway = start_gateway(start_server, tmp_path, replicas, {"enabled": False})
    events = []
    with pytest.raises(grpc.RpcError) as failure:
        for event in stub(gateway).StreamResponse(response_request(fault={"fault": "drop", "after": 12}), timeout=30):
            events.append(event)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    assert len(events) == 12


@pytest.mark.parametrize("fields", [
    {"top_logprobs": 2}, {"store": True}, {"previous_response_id": "resp_1"},
    {"text": {"format": {"type": "json_object"}}},
], ids=["logprobs", "store", "previous_response", "structured_output"])
def test_what_cannot_be_continued_fails_as_before(sims, start_server, tmp_path, fields):
    replicas = [sims("a"), sims("b")]
    gateway = start_gateway(start_server, tmp_path, replicas)
    events = []
    with pytest.raises(grpc.RpcError) as failure:
        for event in stub(gateway).StreamResponse(
                response_request(fault={"fault": "drop", "after": 12}, **fields), timeout=30):
            events.append(event)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    assert len(events) == 12
    assert sum(sim.stats()["by_path"].get("/v1/chat/completions", 0) for sim in replicas) == 0
    assert metric(gateway, MIGRATIONS) == 0


@pytest.mark.parametrize("through_chat", [False, True], ids=["native", "through_chat"])
def test_a_stream_leaves_an_upstream_its_health_checks_mark_down(sims, start_server, tmp_path, through_chat):
    """The stream's upstream fails its health checks while it still generates: the stream moves
    before anything fails there, and the client sees one uninterrupted response."""
    flags = ["--no-responses"] if through_chat else []
    replicas = [sims("a", *flags), sims("b", *flags)]
    gateway = start_gateway(start_server, tmp_path, replicas, None,
                            *(["--responses-mode", "chat"] if through_chat else []))
    vllm = stub(gateway)
    expected = list(vllm.StreamResponse(response_request(), timeout=30))
    events = []
    for event in vllm.StreamResponse(response_request(pace=25), timeout=30):
        events.append(event)
        if len(of_kind(events, "response_output_text_delta")) == 6 and kinds(events)[-1].endswith("delta"):
            victim = serving(replicas)
            before = victim.stats()
            set_health(victim, False)
    assert_like_uninterrupted(events, expected)
    stats = victim.stats()
    assert stats["aborted"] == before["aborted"] + 1 and stats["in_flight"] == 0, (before, stats)
    assert metric(gateway, MIGRATIONS) == 1
    assert "its health checks failed" in gateway.log()
