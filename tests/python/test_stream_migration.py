"""Streams that survive a dying replica: a streamed chat or text completion whose vLLM fails part
way (killed, silent, an engine error event, a cut connection) goes on on another replica serving
the model, and the client gets exactly the text of an uninterrupted run, one finish reason and one
usage that counts every token, with the same chunk id throughout. Migrations show in the access
log and the metrics; with migration off, or for what cannot be continued, the call fails as it
always did, never an OK with a hole in it."""

import json
import signal
import threading
import time
import urllib.request

import grpc
import pytest

from conftest import Simulator, free_port
from vllmgateway.v1 import chat_pb2, completions_pb2, service_pb2_grpc

QUESTION = "Tell me a long story about a fox and the stars"
TOKENS = 40


@pytest.fixture
def sims(tmp_path):
    started = []

    def start(name, *args):
        sim = Simulator("vllm-sim", ["--port", "{port}", *args], tmp_path / f"{name}.log")
        started.append(sim)
        return sim
    yield start
    for sim in started:
        sim.stop()


def start_gateway(start_server, tmp_path, sims, migration=None, *flags):
    config = {
        "upstreams": [{"name": f"sim{index}", "url": f"http://{sim.address}"} for index, sim in enumerate(sims)],
        "health": {"check_interval_seconds": 0.2, "base_ejection_seconds": 0.5, "max_ejection_seconds": 2},
    }
    if migration is not None:
        config["stream_migration"] = migration
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps(config))
    metrics_port = free_port()
    gateway = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--config", str(path),
                           "--access-log", str(tmp_path / "access.log"), "--metrics-listen",
                           f"127.0.0.1:{metrics_port}", "--log-level", "debug", *flags)
    gateway.metrics_port = metrics_port
    gateway.access_log = tmp_path / "access.log"
    return gateway


def chat(pace=None, fault=None, max_tokens=TOKENS, question=QUESTION):
    request = chat_pb2.ChatCompletionRequest(
        max_tokens=max_tokens, temperature=0, messages=[chat_pb2.ChatMessage(role="user", text=question)])
    sim = {}
    if pace:
        sim["tokens_per_second"] = pace
    if fault:
        sim.update(fault)
    if sim:
        request.extra_body.update({"vllm_sim": sim})
    return request


def completion(pace=None, fault=None):
    request = completions_pb2.CompletionRequest(prompt_text="Once upon a time", max_tokens=TOKENS, temperature=0)
    sim = {**({"tokens_per_second": pace} if pace else {}), **(fault or {})}
    if sim:
        request.extra_body.update({"vllm_sim": sim})
    return request


def text_of(chunks, chat_stream=True):
    if chat_stream:
        return "".join(choice.delta.content for chunk in chunks for choice in chunk.choices)
    return "".join(choice.text for chunk in chunks for choice in chunk.choices)


def finish_reasons(chunks):
    return [choice.finish_reason for chunk in chunks for choice in chunk.choices if choice.HasField("finish_reason")]


def usage_of(chunks):
    with_usage = [chunk.usage for chunk in chunks if chunk.HasField("usage")]
    assert len(with_usage) == 1, with_usage
    return with_usage[0]


def stub(gateway):
    return service_pb2_grpc.VLLMServiceStub(grpc.insecure_channel(gateway.address))


def serving(sims):
    """The sim that has a generation in flight."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for sim in sims:
            if sim.stats()["in_flight"] > 0:
                return sim
        time.sleep(0.01)
    raise AssertionError("no sim is generating")


def uninterrupted(vllm, request, streaming):
    """What an undisturbed run of the request gives: its chunks."""
    return list(streaming(vllm)(request, timeout=30))


def metric(gateway, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{gateway.metrics_port}/metrics", timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def migrated_lines(gateway):
    """The access log's lines of calls that moved, once the log has written them."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in gateway.access_log.read_text().splitlines() if line.strip()]
        moved = [line for line in lines if line.get("migrations")]
        if moved:
            return moved
        time.sleep(0.05)
    return []


@pytest.mark.parametrize("kind", ["chat", "completion"])
def test_a_replica_killed_mid_stream_is_invisible_to_the_client(sims, start_server, tmp_path, kind):
    replicas = [sims("a"), sims("b")]
    gateway = start_gateway(start_server, tmp_path, replicas)
    vllm = stub(gateway)
    make, streaming = (chat, lambda s: s.StreamChatCompletion) if kind == "chat" else \
        (completion, lambda s: s.StreamCompletion)
    expected = uninterrupted(vllm, make(), streaming)
    chunks = []
    stream = streaming(vllm)(make(pace=40), timeout=30)
    for chunk in stream:
        chunks.append(chunk)
        if len(chunks) == 10:
            victim = serving(replicas)
            victim.process.send_signal(signal.SIGKILL)
            victim.process.wait()
    assert stream.code() == grpc.StatusCode.OK
    assert text_of(chunks, kind == "chat") == text_of(expected, kind == "chat")
    assert finish_reasons(chunks) == ["length"]
    usage, expected_usage = usage_of(chunks), usage_of(expected)
    assert usage.completion_tokens == TOKENS
    assert usage.prompt_tokens == expected_usage.prompt_tokens
    assert usage.total_tokens == expected_usage.total_tokens
    assert len({chunk.id for chunk in chunks}) == 1, "the chunk id changed mid-stream"
    assert metric(gateway, "vllm_grpc_gateway_stream_migrations_total") == 1
    migrated = migrated_lines(gateway)
    assert len(migrated) == 1 and migrated[0]["status"] == "OK", migrated
    assert migrated[0]["completion_tokens"] == TOKENS


# Each way a replica fails part way, twelve chunks in (stall: with --upstream-stall-timeout 0.5).
MID_STREAM_FAULTS = [
    {"fault": "stream_error", "after": 12, "status": 500, "message": "EngineDeadError: engine died"},
    {"fault": "drop", "after": 12},
    {"fault": "reset", "after": 12},
    {"fault": "truncate", "after": 12},
    {"fault": "stall", "after": 12},
]


def stream_killing(vllm, request, replicas, at=(6, 14)):
    """Streams `request`, killing the replica generating it at each chunk count in `at`; returns the
    chunks received (and leaves any RpcError to the caller)."""
    chunks = []
    for chunk in vllm.StreamChatCompletion(request, timeout=30):
        chunks.append(chunk)
        if len(chunks) in at:
            victim = serving(replicas)
            victim.process.send_signal(signal.SIGKILL)
            victim.process.wait()
            replicas.remove(victim)
    return chunks


@pytest.mark.parametrize("fault", MID_STREAM_FAULTS, ids=lambda fault: fault["fault"])
def test_each_mid_stream_failure_moves_the_stream(sims, start_server, tmp_path, fault):
    replicas = [sims("a"), sims("b")]
    gateway = start_gateway(start_server, tmp_path, replicas, None, "--upstream-stall-timeout", "0.5")
    vllm = stub(gateway)
    expected = list(vllm.StreamChatCompletion(chat(), timeout=30))
    chunks = list(vllm.StreamChatCompletion(chat(fault=fault), timeout=30))
    assert text_of(chunks) == text_of(expected)
    assert finish_reasons(chunks) == ["length"]
    assert usage_of(chunks).completion_tokens == TOKENS
    assert sum(sim.stats()["by_path"].get("/v1/chat/completions", 0) for sim in replicas) == 3  # 1 + failed + continued


def test_with_migration_off_the_call_fails_as_before(sims, start_server, tmp_path):
    replicas = [sims("a"), sims("b")]
    gateway = start_gateway(start_server, tmp_path, replicas, {"enabled": False})
    chunks = []
    with pytest.raises(grpc.RpcError) as failure:
        for chunk in stub(gateway).StreamChatCompletion(chat(fault={"fault": "drop", "after": 12}), timeout=30):
            chunks.append(chunk)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    assert 0 < len(chunks) < TOKENS


def test_a_model_outside_the_policy_does_not_move(sims, start_server, tmp_path):
    replicas = [sims("a"), sims("b")]
    gateway = start_gateway(start_server, tmp_path, replicas, {"models": ["another-model"]})
    with pytest.raises(grpc.RpcError) as failure:
        list(stub(gateway).StreamChatCompletion(chat(fault={"fault": "drop", "after": 12}), timeout=30))
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE


def test_the_migration_limit_bounds_the_moves(sims, start_server, tmp_path):
    replicas = [sims("a"), sims("b"), sims("c")]
    gateway = start_gateway(start_server, tmp_path, replicas, {"max_per_call": 1})
    with pytest.raises(grpc.RpcError) as failure:
        stream_killing(stub(gateway), chat(pace=40), replicas)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    assert metric(gateway, "vllm_grpc_gateway_stream_migrations_total") == 1


def test_several_choices_are_not_continued(sims, start_server, tmp_path):
    replicas = [sims("a"), sims("b")]
    gateway = start_gateway(start_server, tmp_path, replicas)
    request = chat(fault={"fault": "drop", "after": 12})
    request.n = 2
    with pytest.raises(grpc.RpcError) as failure:
        list(stub(gateway).StreamChatCompletion(request, timeout=30))
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE


def set_health(sim, healthy):
    request = urllib.request.Request(f"http://{sim.address}/admin/health", data=json.dumps({"healthy": healthy}).encode(),
                                     headers={"content-type": "application/json"})
    urllib.request.urlopen(request, timeout=5).read()


def assert_moved_before_failing(gateway, victim, before, chunks, expected, reason, other_calls=0):
    """The stream left `victim` while it was still generating (`before`: its stats then; it
    answered `other_calls` others since), and the client saw nothing of it."""
    assert text_of(chunks) == text_of(expected)
    assert finish_reasons(chunks) == ["length"]
    assert usage_of(chunks).completion_tokens == TOKENS
    assert len({chunk.id for chunk in chunks}) == 1
    stats = victim.stats()
    assert stats["aborted"] == before["aborted"] + 1 and stats["completed"] == before["completed"] + other_calls, (
        before, stats)
    assert stats["in_flight"] == 0, stats
    assert metric(gateway, "vllm_grpc_gateway_stream_migrations_total") == 1
    gateway.wait_for_log("stream moved to another upstream")
    assert reason in gateway.log()


def stream_disturbed(vllm, replicas, disturb, question=QUESTION):
    """A paced stream whose upstream `disturb(victim)` upsets at its sixth chunk, and an undisturbed
    run of it: (chunks, expected, victim, victim's stats just before)."""
    expected = list(vllm.StreamChatCompletion(chat(question=question), timeout=30))
    chunks, seen = [], {}
    for chunk in vllm.StreamChatCompletion(chat(pace=25, question=question), timeout=30):
        chunks.append(chunk)
        if len(chunks) == 6:
            seen["victim"] = victim = serving(replicas)
            seen["before"] = victim.stats()
            disturb(victim)
    return chunks, expected, seen["victim"], seen["before"]


def test_a_stream_leaves_an_upstream_its_health_checks_mark_down(sims, start_server, tmp_path):
    """vLLM's /health fails (an engine going bad) while it still generates: the fleet marks it
    down, and the stream on it moves before anything fails there."""
    replicas = [sims("a"), sims("b")]
    gateway = start_gateway(start_server, tmp_path, replicas)
    chunks, expected, victim, before = stream_disturbed(stub(gateway), replicas, lambda victim: set_health(victim, False))
    assert_moved_before_failing(gateway, victim, before, chunks, expected, "its health checks failed")


def test_a_stream_leaves_an_upstream_a_reload_removes(sims, start_server, tmp_path):
    """A reload that removes an upstream drains it: streams that can move leave it at once."""
    replicas = [sims("a"), sims("b")]
    gateway = start_gateway(start_server, tmp_path, replicas)

    def remove(victim):
        survivor = next(sim for sim in replicas if sim is not victim)
        config = json.loads((tmp_path / "gateway.json").read_text())
        config["upstreams"] = [{"name": "survivor", "url": f"http://{survivor.address}"}]
        (tmp_path / "gateway.json").write_text(json.dumps(config))
        gateway.signal(signal.SIGHUP)
    chunks, expected, victim, before = stream_disturbed(stub(gateway), replicas, remove)
    assert_moved_before_failing(gateway, victim, before, chunks, expected, "it was removed from the configuration")


def test_a_stream_leaves_an_upstream_ejected_for_failing_other_calls(sims, start_server, tmp_path):
    """Another call fails on the stream's upstream and ejects it (one failure ejects here): the
    stream moves rather than wait to fail there too. Prefix affinity sends the failing call,
    which shares the stream's long prompt, to the stream's upstream."""
    question = QUESTION + ". " + "Once there was a fox who counted the stars every night. " * 12
    replicas = [sims("a"), sims("b")]
    config = {
        "upstreams": [{"name": f"sim{index}", "url": f"http://{sim.address}"} for index, sim in enumerate(replicas)],
        "routing": {"generation": "prefix"},
        "health": {"check_interval_seconds": 5, "consecutive_failures_to_eject": 1},
    }
    (tmp_path / "fleet.json").write_text(json.dumps(config))
    metrics_port = free_port()
    gateway = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--config",
                           str(tmp_path / "fleet.json"), "--metrics-listen", f"127.0.0.1:{metrics_port}",
                           "--log-level", "debug")
    gateway.metrics_port = metrics_port
    vllm = stub(gateway)

    def fail_a_call_there(victim):
        with pytest.raises(grpc.RpcError):
            vllm.CreateChatCompletion(chat(fault={"fault": "http_error", "status": 500}, question=question), timeout=10)
    chunks, expected, victim, before = stream_disturbed(vllm, replicas, fail_a_call_there, question)
    assert_moved_before_failing(gateway, victim, before, chunks, expected, "it was ejected after consecutive failures",
                                other_calls=1)


@pytest.mark.parametrize("constraint", ["response_format", "structured_outputs"])
def test_structured_output_is_not_continued(sims, start_server, tmp_path, constraint):
    """vLLM's grammar would start again at a continuation's first token, so the output would not
    be what an uninterrupted run gives: such a call fails as before."""
    replicas = [sims("a"), sims("b")]
    gateway = start_gateway(start_server, tmp_path, replicas)
    request = chat(fault={"fault": "drop", "after": 12})
    if constraint == "response_format":
        request.response_format.type = "json_object"
    else:
        request.structured_outputs.regex = "[a-z ]+"
    with pytest.raises(grpc.RpcError) as failure:
        list(stub(gateway).StreamChatCompletion(request, timeout=30))
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    plain = chat(fault={"fault": "drop", "after": 12})
    plain.response_format.type = "text"
    assert usage_of(list(stub(gateway).StreamChatCompletion(plain, timeout=30))).completion_tokens == TOKENS


def test_the_access_log_counts_each_token_once_across_two_moves(sims, start_server, tmp_path):
    replicas = [sims("a"), sims("b"), sims("c")]
    gateway = start_gateway(start_server, tmp_path, replicas)
    vllm = stub(gateway)
    expected = usage_of(list(vllm.StreamChatCompletion(chat(), timeout=30)))
    chunks = stream_killing(vllm, chat(pace=40), replicas)
    assert usage_of(chunks).completion_tokens == TOKENS
    migrated = migrated_lines(gateway)
    assert len(migrated) == 1 and migrated[0]["migrations"] == 2, migrated
    assert migrated[0]["completion_tokens"] == TOKENS
    assert migrated[0]["prompt_tokens"] == expected.prompt_tokens
