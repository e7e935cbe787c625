"""The metrics page after a known load: calls by method, model, key and status, their duration,
time to first token and time per output token, tokens by model and key, calls in flight by
method, and each upstream's requests, failures, health and ejections, all exact."""

import json
import re
import urllib.request

import grpc
import pytest

from conftest import free_port
from vllmgateway.v1 import chat_pb2, service_pb2_grpc

CHAT = "/vllmgateway.v1.VLLMService/CreateChatCompletion"
STREAM = "/vllmgateway.v1.VLLMService/StreamChatCompletion"


def chat(max_tokens=4, sim=None):
    request = chat_pb2.ChatCompletionRequest(model="sim-model", max_tokens=max_tokens,
                                             messages=[chat_pb2.ChatMessage(role="user", text="count me")])
    if sim:
        request.extra_body.update({"vllm_sim": sim})
    return request


def samples(text):
    """{(name, frozenset(labels)): value} of a Prometheus text page, which must name each series
    once and declare each family's type once (Prometheus rejects a page that repeats either)."""
    out = {}
    types = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            family = line.split()[2]
            assert family not in types, f"a family's type twice: {line}"
            types.add(family)
        if not line or line.startswith("#"):
            continue
        match = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        assert match, f"not a sample line: {line}"
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match.group(3) or ""))
        assert (match.group(1), labels) not in out, f"a series twice: {line}"
        out[(match.group(1), labels)] = float(match.group(4))
    return out


def test_metrics_after_a_known_load(sim, start_server, tmp_path):
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps({"upstreams": [{"name": "sim-a", "url": f"http://{sim.address}"}],
                                  "auth": {"keys": [{"id": "team-a", "key": "sk-metrics"}]}}))
    metrics_port = free_port()
    gateway = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--config", str(config),
                           "--metrics-listen", f"127.0.0.1:{metrics_port}")
    key = [("x-api-key", "sk-metrics")]
    completion_tokens = 0
    prompt_tokens = 0
    with grpc.insecure_channel(gateway.address) as channel:
        stub = service_pb2_grpc.VLLMServiceStub(channel)
        for _ in range(3):
            reply = stub.CreateChatCompletion(chat(), metadata=key, timeout=5)
            completion_tokens += reply.usage.completion_tokens
            prompt_tokens += reply.usage.prompt_tokens
        for _ in range(2):
            chunks = list(stub.StreamChatCompletion(chat(max_tokens=6), metadata=key, timeout=5))
            completion_tokens += chunks[-1].usage.completion_tokens
            prompt_tokens += chunks[-1].usage.prompt_tokens
        with pytest.raises(grpc.RpcError):
            stub.CreateChatCompletion(chat(sim={"fault": "http_error", "status": 503}), metadata=key, timeout=5)
        with pytest.raises(grpc.RpcError):
            stub.CreateChatCompletion(chat(), timeout=5)
        # Back to the first labels after others: counted with the first calls, not the last.
        reply = stub.CreateChatCompletion(chat(), metadata=key, timeout=5)
        completion_tokens += reply.usage.completion_tokens
        prompt_tokens += reply.usage.prompt_tokens
    page = samples(urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode())

    def value(name, **labels):
        return page.get((name, frozenset(labels.items())), 0)

    calls = "vllm_grpc_gateway_calls_total"
    assert value(calls, method=CHAT, model="sim-model", key="team-a", status="OK") == 4
    assert value(calls, method=STREAM, model="sim-model", key="team-a", status="OK") == 2
    assert value(calls, method=CHAT, model="sim-model", key="team-a", status="UNAVAILABLE") == 1
    assert value(calls, method=CHAT, model="", key="", status="UNAUTHENTICATED") == 1
    tokens = {"model": "sim-model", "key": "team-a"}
    assert value("vllm_grpc_gateway_completion_tokens_total", **tokens) == completion_tokens == 4 * 4 + 2 * 6
    assert value("vllm_grpc_gateway_prompt_tokens_total", **tokens) == prompt_tokens > 0
    labels = {"method": STREAM, "model": "sim-model", "key": "team-a"}
    assert value("vllm_grpc_gateway_time_to_first_token_seconds_count", **labels) == 2
    assert value("vllm_grpc_gateway_time_per_output_token_seconds_count", **labels) == 2
    assert value("vllm_grpc_gateway_call_duration_seconds_count", **labels) == 2
    # Buckets in seconds, cumulative: both streams (well under a second each) in every bucket
    # from 1 s up; the time per output token has its own finer buckets.
    duration = "vllm_grpc_gateway_call_duration_seconds_bucket"
    for bound in ["1.0", "2.5", "300.0", "+Inf"]:
        assert value(duration, le=bound, **labels) == 2, bound
    assert value(duration, le="0.005", **labels) <= value(duration, le="0.5", **labels) <= 2
    assert 0 < value("vllm_grpc_gateway_call_duration_seconds_sum", **labels) < 2
    per_token = "vllm_grpc_gateway_time_per_output_token_seconds_bucket"
    assert value(per_token, le="0.64", **labels) == 2
    assert (per_token, frozenset({**labels, "le": "0.001"}.items())) in page
    assert (per_token, frozenset({**labels, "le": "300.0"}.items())) not in page
    assert value("vllm_grpc_gateway_active_calls", method=CHAT) == 0
    assert value("vllm_grpc_gateway_upstream_healthy", upstream="sim-a") == 1
    assert value("vllm_grpc_gateway_upstream_requests", upstream="sim-a") == 7
    assert value("vllm_grpc_gateway_upstream_failures", upstream="sim-a") == 1
    assert value("vllm_grpc_gateway_upstream_ejections", upstream="sim-a") == 0
    # The transport's own counters are still there.
    assert value("vllm_grpc_gateway_calls_started_total") >= 7


def test_the_dashboard_and_alerts_use_only_metrics_the_gateway_serves(sim, start_server, tmp_path):
    """deploy/'s Grafana dashboard and Prometheus rules name metrics (histograms through their
    _bucket series); every one must be on the page of a gateway with keys, a fleet and traffic."""
    import yaml
    from conftest import ROOT
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps({"upstreams": [{"name": "sim-a", "url": f"http://{sim.address}"}],
                                  "auth": {"keys": [{"id": "k", "key": "sk-k", "requests_per_minute": 100,
                                                     "tokens_per_minute": 10000}]}}))
    metrics_port = free_port()
    gateway = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--config", str(config),
                           "--metrics-listen", f"127.0.0.1:{metrics_port}")
    with grpc.insecure_channel(gateway.address) as channel:
        list(service_pb2_grpc.VLLMServiceStub(channel).StreamChatCompletion(chat(), metadata=[("x-api-key", "sk-k")],
                                                                             timeout=5))
    served = {name for name, _ in samples(
        urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode())}
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus-alerts.yaml").read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert len(expressions) >= 6 and all(rule.get("annotations", {}).get("summary")
                                         for group in rules["groups"] for rule in group["rules"])
    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    expressions += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    named = set(re.findall(r"\b(vllm_grpc_gateway_[a-z_]+)", "\n".join(expressions)))
    assert named, "no gateway metric named"
    assert named <= served, f"not served: {sorted(named - served)}"
