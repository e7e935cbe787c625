"""A fleet of vllm-sim instances behind one gateway: calls routed by model, a configuration file
(with Bifrost's provider block), unknown models, merged ListModels, prefix affinity and load
policies, and a replica killed under load and restarted: every call ends correctly and traffic
moves within a bounded time."""

import json
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from conftest import ServerProcess, Simulator, free_port
from vllmgateway.v1 import chat_pb2, models_pb2, service_pb2_grpc


def chat(model, text="hello fleet", max_tokens=4, tokens_per_second=None):
    request = chat_pb2.ChatCompletionRequest(model=model, max_tokens=max_tokens,
                                             messages=[chat_pb2.ChatMessage(role="user", text=text)])
    if tokens_per_second:
        request.extra_body.update({"vllm_sim": {"tokens_per_second": tokens_per_second}})
    return request


def start_sim(tmp_path, name, *args, port=None):
    return Simulator("vllm-sim", ["--port", "{port}", *args], tmp_path / f"{name}.log", port=port)


def write_config(tmp_path, config):
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps(config))
    return path


def start_gateway(start_server, config_path, *flags):
    return start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--config", str(config_path),
                        "--log-level", "info", *flags)


def fast_health(**extra):
    return {"check_interval_seconds": 0.2, "base_ejection_seconds": 0.5, "max_ejection_seconds": 2, **extra}


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def sims(tmp_path):
    started = []

    def start(name, *args, port=None):
        sim = start_sim(tmp_path, name, *args, port=port)
        started.append(sim)
        return sim
    yield start
    for sim in started:
        sim.stop()


def stub_for(gateway):
    channel = grpc.insecure_channel(gateway.address)
    return channel, service_pb2_grpc.VLLMServiceStub(channel)


def served(stub):
    return sorted(m.id for m in stub.ListModels(models_pb2.ListModelsRequest(), timeout=5).data)


def test_calls_go_to_the_upstream_serving_their_model(sims, start_server, tmp_path):
    alpha, beta = sims("alpha", "--model", "alpha"), sims("beta", "--model", "beta")
    gateway = start_gateway(start_server, write_config(tmp_path, {
        "upstreams": [{"name": "a", "url": f"http://{alpha.address}"}, {"name": "b", "url": f"http://{beta.address}"}],
        "health": fast_health()}))
    channel, stub = stub_for(gateway)
    with channel:
        assert wait_until(lambda: served(stub) == ["alpha", "beta"]), served(stub)
        for _ in range(5):
            assert stub.CreateChatCompletion(chat("alpha"), timeout=5).model == "alpha"
            assert stub.CreateChatCompletion(chat("beta"), timeout=5).model == "beta"
        assert alpha.stats()["by_path"].get("/v1/chat/completions") == 5
        assert beta.stats()["by_path"].get("/v1/chat/completions") == 5
        with pytest.raises(grpc.RpcError) as error:
            stub.CreateChatCompletion(chat("gamma"), timeout=5)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
        assert error.value.details() == "no upstream serves the model `gamma`; the models served are: alpha, beta"
        # The rich error says the same for programs: google.rpc.ErrorInfo in grpc-status-details-bin.
        details = dict(error.value.trailing_metadata())["grpc-status-details-bin"]
        status = status_pb2.Status.FromString(details)
        assert status.code == grpc.StatusCode.NOT_FOUND.value[0] and len(status.details) == 1
        info = error_details_pb2.ErrorInfo()
        assert status.details[0].Unpack(info)
        assert (info.reason, info.domain) == ("MODEL_NOT_FOUND", "vllm-grpc-gateway")
        assert dict(info.metadata) == {"model": "gamma", "served_models": "alpha,beta"}
        # One upstream down: ListModels still answers, with what it listed last.
        beta.stop()
        assert served(stub) == ["alpha", "beta"]
        assert stub.CreateChatCompletion(chat("alpha"), timeout=5).model == "alpha"


def test_a_bifrost_provider_block_is_accepted_as_it_is(sims, start_server, tmp_path, monkeypatch):
    one, two = sims("one", "--model", "llama"), sims("two", "--model", "llama")
    monkeypatch.setenv("FLEET_TEST_KEY", "sk-fleet")
    config = {"providers": {"vllm": {
        "keys": [{"name": "vllm-1", "value": "env.FLEET_TEST_KEY", "models": ["llama"], "weight": 1.0,
                  "vllm_key_config": {"url": f"http://{one.address}", "model_name": "llama"}},
                 {"name": "vllm-2", "value": "env.FLEET_TEST_KEY", "models": ["*"], "weight": 1.0,
                  "vllm_key_config": {"url": f"http://{two.address}", "model_name": "llama"}}],
        "network_config": {"base_url": "http://unused:8000", "default_request_timeout_in_seconds": 30,
                           "max_retries": 2, "retry_backoff_initial_ms": 10, "retry_backoff_max_ms": 100,
                           "extra_headers": {"x-team": "fleet"}}}},
        "routing": {"generation": "round_robin"}}
    gateway = start_gateway(start_server, write_config(tmp_path, config))
    channel, stub = stub_for(gateway)
    with channel:
        for _ in range(10):
            stub.CreateChatCompletion(chat("llama"), timeout=5)
    # Round robin over two equal weights: five each, with the key and the extra header.
    assert [one.stats()["requests"], two.stats()["requests"]] == [5, 5]
    headers = dict(one.stats()["last_headers"])
    assert headers["authorization"] == "Bearer sk-fleet" and headers["x-team"] == "fleet"


@pytest.mark.parametrize("config,error", [
    ({"upstreams": [{"url": "http://127.0.0.1:1", "wieght": 2}]}, "$.upstreams[0].wieght: unknown key"),
    ({"upstreams": [{"url": "ftp://x"}]}, '$.upstreams[0].url: must be an http:// or https:// URL, not "ftp://x"'),
    ({"upstreams": [{"url": "http://h:1", "weight": "heavy"}]}, "$.upstreams[0].weight: must be a number"),
    ({"routing": {"generation": "fastest"}}, '$.routing.generation: unknown policy "fastest"'),
    ({"upstreams": [{"url": "env.NO_SUCH_VARIABLE_HERE"}]},
     "$.upstreams[0].url: the environment variable NO_SUCH_VARIABLE_HERE is not set"),
    ({"providers": {"vllm": {"keys": [{"value": "x"}]}}},
     "$.providers.vllm.keys[0]: needs vllm_key_config.url, or the provider's network_config.base_url"),
    ({"health": {"check_interval_seconds": 1e10}}, "$.health.check_interval_seconds: must be at most 1000000000"),
    ({"providers": {"vllm": {"keys": [{"value": "x", "vllm_key_config": {"url": "http://h:1"}}],
                             "network_config": {"retry_backoff_max_ms": 1e14}}}},
     "$.providers.vllm.network_config.retry_backoff_max_ms: must be at most 1000000000000"),
])
def test_a_bad_configuration_is_refused_at_start_with_its_path(tmp_path, config, error):
    import subprocess
    from conftest import BIN_DIR
    path = write_config(tmp_path, config)
    result = subprocess.run([str(BIN_DIR / "vllm-grpc-gateway"), "--config", str(path), "--listen", "127.0.0.1:0"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert error in result.stderr, result.stderr


def test_yaml_configuration(sims, start_server, tmp_path):
    sim = sims("yaml", "--model", "tiny")
    path = tmp_path / "gateway.yaml"
    path.write_text(f"""
upstreams:
  - name: only
    url: http://{sim.address}
    models: [tiny]
limits:
  max_upstream_requests: 5
""")
    gateway = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--config", str(path))
    channel, stub = stub_for(gateway)
    with channel:
        assert stub.CreateChatCompletion(chat("tiny"), timeout=5).model == "tiny"


def test_prefix_affinity_keeps_a_system_prompt_on_one_replica(sims, start_server, tmp_path):
    replicas = [sims(f"r{i}", "--model", "m") for i in range(3)]
    gateway = start_gateway(start_server, write_config(tmp_path, {
        "upstreams": [{"url": f"http://{r.address}"} for r in replicas], "health": fast_health()}))
    system = "You are a careful assistant for the fleet test. " * 40
    channel, stub = stub_for(gateway)
    with channel:
        assert wait_until(lambda: served(stub) == ["m"])
        for user in range(12):
            request = chat_pb2.ChatCompletionRequest(model="m", max_tokens=2, messages=[
                chat_pb2.ChatMessage(role="system", text=system),
                chat_pb2.ChatMessage(role="user", text=f"question {user}")])
            stub.CreateChatCompletion(request, timeout=5)
        counts = sorted(r.stats()["requests"] for r in replicas)
        assert counts == [0, 0, 12], counts
        # Different prompts spread over the replicas.
        for r in replicas:
            r.reset()
        for user in range(30):
            stub.CreateChatCompletion(chat("m", text=f"an unrelated prompt number {user} " * 20), timeout=5)
        assert all(r.stats()["requests"] > 0 for r in replicas), [r.stats()["requests"] for r in replicas]


def test_least_load_sends_less_to_a_slow_replica(sims, start_server, tmp_path):
    fast = sims("fast", "--model", "m", "--tokens-per-second", "1000")
    slow = sims("slow", "--model", "m", "--tokens-per-second", "20")
    gateway = start_gateway(start_server, write_config(tmp_path, {
        "upstreams": [{"url": f"http://{fast.address}"}, {"url": f"http://{slow.address}"}],
        "routing": {"generation": "least_load"}, "health": fast_health()}))
    channel, stub = stub_for(gateway)
    with channel:
        assert wait_until(lambda: served(stub) == ["m"])
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(lambda i: list(stub.StreamChatCompletion(chat("m", max_tokens=20), timeout=30)), range(160)))
    fast_count, slow_count = fast.stats()["requests"], slow.stats()["requests"]
    assert fast_count + slow_count == 160
    assert fast_count > 3 * slow_count, (fast_count, slow_count)


def test_a_replica_killed_under_load_and_restarted(sims, start_server, tmp_path):
    """Two replicas; one is killed while calls run. Calls it had in flight end UNAVAILABLE (never
    a truncated OK); calls after go to the other at once, a refused connection failing over with
    no error. Restarted, it is readmitted and gets traffic again within a bounded time."""
    steady = sims("steady", "--model", "m")
    port = free_port()
    victim = sims("victim", "--model", "m", port=port)
    gateway = start_gateway(start_server, write_config(tmp_path, {
        "upstreams": [{"url": f"http://{steady.address}"}, {"url": f"http://127.0.0.1:{port}"}],
        "routing": {"generation": "round_robin"}, "health": fast_health()}))
    channel, stub = stub_for(gateway)
    outcomes = []
    stop = threading.Event()

    def client():
        while not stop.is_set():
            try:
                chunks = list(stub.StreamChatCompletion(chat("m", max_tokens=30, tokens_per_second=100), timeout=10))
                assert chunks[-1].usage.completion_tokens == 30
                outcomes.append((time.monotonic(), "OK"))
            except grpc.RpcError as error:
                outcomes.append((time.monotonic(), error.code().name))

    with channel:
        assert wait_until(lambda: served(stub) == ["m"])
        threads = [threading.Thread(target=client) for _ in range(8)]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait()
        killed_at = time.monotonic()
        time.sleep(2.0)
        restarted = sims("victim-again", "--model", "m", port=port)
        restarted_at = time.monotonic()
        assert wait_until(lambda: restarted.stats()["requests"] > 0, timeout=10), "never readmitted"
        readmitted_after = time.monotonic() - restarted_at
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
    failures = [(t - killed_at, code) for t, code in outcomes if code != "OK"]
    # Only calls in flight on the victim when it died fail, all UNAVAILABLE, within moments.
    assert all(code == "UNAVAILABLE" and -0.1 < after < 0.5 for after, code in failures), failures
    assert len(failures) <= 8
    assert sum(1 for _, code in outcomes if code == "OK") > 50
    assert readmitted_after < 5, readmitted_after


def test_a_call_fails_over_past_two_unreachable_upstreams(sims, start_server, tmp_path):
    """Two of three upstreams refuse connections and stay eligible (health checks a minute apart,
    no ejection): every call still ends OK on the third, after one or two failovers, the second
    after a backoff."""
    live = sims("live", "--model", "m")
    dead = [free_port(), free_port()]
    gateway = start_gateway(start_server, write_config(tmp_path, {
        "upstreams": [{"url": f"http://127.0.0.1:{port}", "models": ["m"]} for port in dead]
        + [{"url": f"http://{live.address}", "models": ["m"]}],
        "routing": {"generation": "round_robin"},
        "health": {"check_interval_seconds": 60, "consecutive_failures_to_eject": 100}}))
    channel, stub = stub_for(gateway)
    with channel:
        for _ in range(12):
            assert stub.CreateChatCompletion(chat("m"), timeout=5).choices[0].message.content
    assert live.stats()["requests"] == 12


def test_each_model_has_its_own_health(sims, start_server, tmp_path):
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    alpha, beta = sims("alpha", "--model", "alpha"), sims("beta", "--model", "beta")
    gateway = start_gateway(start_server, write_config(tmp_path, {
        "upstreams": [{"url": f"http://{alpha.address}"}, {"url": f"http://{beta.address}"}],
        "health": fast_health()}))
    with grpc.insecure_channel(gateway.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)

        def status(service):
            try:
                return health_pb2.HealthCheckResponse.ServingStatus.Name(
                    health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status)
            except grpc.RpcError as error:
                return error.code().name
        assert wait_until(lambda: status("alpha") == "SERVING" and status("beta") == "SERVING")
        beta.stop()
        started = time.monotonic()
        assert wait_until(lambda: status("beta") == "NOT_SERVING", timeout=5)
        assert time.monotonic() - started < 2
        assert status("alpha") == "SERVING" and status("") == "SERVING"
        assert status("gamma") == "NOT_FOUND"


def test_least_load_sees_the_queue_vllm_reports(sims, start_server, tmp_path):
    """Another client (say a second gateway) has filled one replica's queue: only vLLM's own
    /metrics shows it, and new calls go to the other replica."""
    import http.client
    idle = sims("idle", "--model", "m")
    busy = sims("busy", "--model", "m", "--max-num-seqs", "1")
    gateway = start_gateway(start_server, write_config(tmp_path, {
        "upstreams": [{"url": f"http://{idle.address}"}, {"url": f"http://{busy.address}"}],
        "routing": {"generation": "least_load"}, "health": fast_health()}))
    body = json.dumps({"model": "m", "max_tokens": 400, "stream": True, "messages": [{"role": "user", "content": "x"}],
                       "vllm_sim": {"tokens_per_second": 20}})
    others = []
    for _ in range(5):
        connection = http.client.HTTPConnection(busy.address.split(":")[0], int(busy.address.split(":")[1]))
        connection.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
        others.append(connection)
    try:
        import urllib.request
        metrics = lambda: urllib.request.urlopen(f"http://{busy.address}/metrics", timeout=5).read().decode()
        assert wait_until(lambda: 'vllm:num_requests_waiting{engine="0",model_name="m"} 4.0' in metrics())
        time.sleep(0.6)  # a few health ticks, which read /metrics
        idle.reset()
        busy.reset()
        channel, stub = stub_for(gateway)
        with channel:
            for _ in range(20):
                stub.CreateChatCompletion(chat("m", max_tokens=2), timeout=5)
        assert (idle.stats()["requests"], busy.stats()["requests"]) == (20, 0)
    finally:
        for connection in others:
            connection.close()


def test_sighup_reloads_the_configuration_without_dropping_calls(sims, start_server, tmp_path):
    old, new = sims("old", "--model", "m"), sims("new", "--model", "m")
    path = write_config(tmp_path, {"upstreams": [{"name": "old", "url": f"http://{old.address}"}],
                                   "health": fast_health()})
    gateway = start_gateway(start_server, path)
    channel, stub = stub_for(gateway)
    with channel:
        assert wait_until(lambda: served(stub) == ["m"])
        # A long stream on the old upstream, in flight across the reload: the old upstream is
        # drained, so the stream moves to the new one and goes on there (test_stream_migration).
        stream = stub.StreamChatCompletion(chat("m", max_tokens=40, tokens_per_second=40), timeout=20)
        first = next(stream)
        path.write_text(json.dumps({"upstreams": [{"name": "new", "url": f"http://{new.address}"}],
                                    "health": fast_health()}))
        gateway.signal(signal.SIGHUP)
        assert gateway.wait_for_log("fleet reconfigured")
        assert wait_until(lambda: served(stub) == ["m"])
        for _ in range(5):
            stub.CreateChatCompletion(chat("m"), timeout=5)
        rest = list(stream)
        assert first.choices[0].delta.role == "assistant" and rest[-1].usage.completion_tokens == 40
        assert new.stats()["requests"] == 6 and old.stats()["requests"] == 1 and old.stats()["aborted"] == 1
        # A bad file is refused and the fleet stays as it was.
        path.write_text('{"upstreams": [{"url": "http://x:1", "wieght": 1}]}')
        gateway.signal(signal.SIGHUP)
        assert gateway.wait_for_log("configuration reload refused")
        assert "$.upstreams[0].wieght: unknown key" in gateway.log()
        stub.CreateChatCompletion(chat("m"), timeout=5)
        assert new.stats()["requests"] == 7
        # So is a duration past what 64-bit nanoseconds hold (converting it trapped, in the reload).
        path.write_text(json.dumps({"upstreams": [{"name": "new", "url": f"http://{new.address}",
                                                   "request_timeout_seconds": 1e10}]}))
        gateway.signal(signal.SIGHUP)
        assert wait_until(lambda: "request_timeout_seconds: must be at most" in gateway.log())
        stub.CreateChatCompletion(chat("m"), timeout=5)
        assert new.stats()["requests"] == 8
        gateway.assert_alive()


def test_a_model_removed_from_an_upstream_moves_its_traffic(sims, start_server, tmp_path):
    """An upstream stops serving a model (vLLM restarted with another): within one discovery
    interval its calls go to the upstream that still serves it, and a model no one serves any
    more is NOT_FOUND."""
    both = sims("both", "--models", "m,n")
    only_m = sims("only-m", "--model", "m")
    gateway = start_gateway(start_server, write_config(tmp_path, {
        "upstreams": [{"url": f"http://{both.address}"}, {"url": f"http://{only_m.address}"}],
        "routing": {"generation": "round_robin"}, "health": {**fast_health(), "discovery_interval_seconds": 0.5}}))
    channel, stub = stub_for(gateway)
    with channel:
        assert wait_until(lambda: served(stub) == ["m", "n"])
        for _ in range(4):
            stub.CreateChatCompletion(chat("m"), timeout=5)
        assert both.stats()["requests"] == 2 and only_m.stats()["requests"] == 2
        http_post(both, "/admin/models", {"models": ["n"]})
        removed_at = time.monotonic()
        assert wait_until(lambda: served(stub) == ["m", "n"] and routed_only_to(stub, only_m, both), timeout=5)
        moved_after = time.monotonic() - removed_at
        assert moved_after < 1.5, moved_after
        http_post(both, "/admin/models", {"models": ["m"]})
        assert wait_until(lambda: served(stub) == ["m"], timeout=5)
        with pytest.raises(grpc.RpcError) as error:
            stub.CreateChatCompletion(chat("n"), timeout=5)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND


def http_post(sim, path, body):
    import urllib.request
    request = urllib.request.Request(f"http://{sim.address}{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())


def routed_only_to(stub, target, other):
    """Four calls for m, all to `target`."""
    before = (target.stats()["requests"], other.stats()["requests"])
    for _ in range(4):
        stub.CreateChatCompletion(chat("m"), timeout=5)
    return (target.stats()["requests"] - before[0], other.stats()["requests"] - before[1]) == (4, 0)
