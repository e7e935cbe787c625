"""Fleet benchmark: what routing among several vLLM servers costs the gateway, and what it buys.

1. Routing overhead. One vllm-sim (fastest mode) behind four gateways at once: the direct path
   (one --upstream, no routing) and config files with 1, 8 and 64 upstreams, all pointing at the
   same sim, models named so that nothing is discovered, default policy (prefix). h2load drives
   unary CreateChatCompletion at each in turn, the same load each time, in interleaved rounds;
   each gateway's CPU per call (the scheduler's nanosecond counts of its threads, as tools/bench
   reads them) is the minimum over the rounds, set against the direct path's. A second prompt
   carries a ~4 KiB system message, the most the prefix policy hashes, and a third 32 KiB (direct
   and 64 upstreams only), to see whether the cost stops growing there. Every call must end OK by
   the gateway's own /metrics. Each gateway's background CPU (health checks and /metrics reads of
   every upstream) is measured idle and shown beside it: it is not per call.

2. Time to first token on four vllm-sim instances with a bounded prefix cache and a prefill cost
   per uncached prompt token: distinct long system prompts, each request one of them (zipf) plus
   a short message of its own, streamed with Python gRPC clients at a fixed concurrency. Per
   routing policy (sims and gateway started afresh, the same warm-up and the same request
   sequence): TTFT p50/p90/p99, requests/s, and the fleet's prefix-cache hit rate from the sims'
   /metrics over the measured requests.

Prints both tables and writes bench-results/bench-fleet.json.
"""

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from bench import (RELEASE, cpu_seconds, free_port, generate_stubs, grpc_counts, grpc_frame, h2load,  # noqa: E402
                   wait_for_port)

GRPC_HEADERS = ["content-type: application/grpc", "te: trailers"]
UNARY_PATH = "/vllmgateway.v1.VLLMService/CreateChatCompletion"
WORDS = ("account audit balance billing budget cache calendar cluster compliance contract customer dashboard "
         "database deadline deploy device discount document escalate estimate export feature forecast invoice "
         "inventory latency ledger license migrate mobile network onboarding outage partner payment pipeline "
         "policy priority privacy product quota refund region release renewal report request review roadmap "
         "schedule security server shipment storage subscription support ticket timezone transfer upgrade vendor "
         "warehouse warranty workflow always never politely briefly carefully first then finally unless only "
         "the a an of to in for with on by from about under over before after during between against").split()


def text_of(rng, header, size):
    """`header` and then words drawn from WORDS until `size` bytes: varied text, so no two prompts
    share a block beyond their headers."""
    parts = [header]
    length = len(header)
    while length < size:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))).capitalize() + "."
        parts.append(sentence)
        length += len(sentence) + 1
    return " ".join(parts)[:size]


class Processes:
    """The servers this run started, stopped by their own handles."""

    def __init__(self, work):
        self.work = work
        self.running = []

    def start(self, command, port, name):
        log = open(self.work / f"{name}-{port}.log", "w")
        process = subprocess.Popen([str(c) for c in command], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.running.append(process)
        wait_for_port(port, process, name)
        return process

    def stop(self, process):
        if process in self.running:
            self.running.remove(process)
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop_all(self):
        for process in list(self.running):
            self.stop(process)


def start_gateway(processes, work, name, upstream_urls, policy=None, single=False):
    port, metrics_port = free_port(), free_port()
    command = [RELEASE / "vllm-grpc-gateway", "--listen", f"127.0.0.1:{port}", "--threads", "1",
               "--log-level", "error", "--metrics-listen", f"127.0.0.1:{metrics_port}"]
    if single:
        command += ["--upstream", upstream_urls[0]]
    else:
        config = {"upstreams": [{"name": f"sim-{i}", "url": url, "models": ["sim-model"]}
                                for i, url in enumerate(upstream_urls)]}
        if policy:
            config["routing"] = {"generation": policy}
        path = work / f"{name}.json"
        path.write_text(json.dumps(config, indent=1))
        command += ["--config", path]
    process = processes.start(command, port, name)
    return {"name": name, "process": process, "port": port, "metrics_port": metrics_port}


# MARK: 1. Routing overhead

def overhead(args, work, processes):
    from vllmgateway.v1 import chat_pb2
    sim_port = free_port()
    # No prefix cache in the sim: it need not hash the long prompt, and is as fast as it gets.
    processes.start([RELEASE / "vllm-sim", "--port", sim_port, "--threads", "1", "--prefix-cache-tokens", "0"],
                    sim_port, "vllm-sim")
    url = f"http://127.0.0.1:{sim_port}"
    gateways = {"direct": start_gateway(processes, work, "direct", [url], single=True)}
    for count in (1, 8, 64):
        gateways[f"fleet-{count}"] = start_gateway(processes, work, f"fleet-{count}", [url] * count)
    upstream_counts = {"direct": 1, "fleet-1": 1, "fleet-8": 8, "fleet-64": 64}

    user = chat_pb2.ChatMessage(role="user", text="Tell me a story about a fox.")
    bodies = {}
    for prompt, system_bytes in (("short", 0), ("long 4 KiB", 4096), ("long 32 KiB", 32768)):
        messages = [user]
        if system_bytes:
            system = text_of(random.Random(7), "You are the support assistant.", system_bytes)
            messages = [chat_pb2.ChatMessage(role="system", text=system), user]
        request = chat_pb2.ChatCompletionRequest(model="sim-model", messages=messages, max_tokens=16)
        path = work / f"unary-{system_bytes}.grpc"
        path.write_bytes(grpc_frame(request.SerializeToString()))
        bodies[prompt] = path
    # The prefix policy hashes the first 4 KiB of the prompt: the 32 KiB one shows whether the
    # cost per call stops growing there (a quarter of the calls, as each costs several times more).
    rows = [("short", ["direct", "fleet-1", "fleet-8", "fleet-64"], args.requests),
            ("long 4 KiB", ["direct", "fleet-64"], args.requests),
            ("long 32 KiB", ["direct", "fleet-64"], args.requests // 4)]
    log = work / "h2load.log"

    def drive(gateway, body, requests):
        return h2load(f"http://127.0.0.1:{gateway['port']}{UNARY_PATH}", body, requests, args.clients,
                      args.streams, GRPC_HEADERS, log)

    def measure(gateway, body, requests):
        ok_before, _ = grpc_counts(gateway["metrics_port"])
        cpu_before = cpu_seconds(gateway["process"].pid)
        began = time.monotonic()
        result = drive(gateway, body, requests)
        seconds = time.monotonic() - began
        cpu = cpu_seconds(gateway["process"].pid) - cpu_before
        ok_after, _ = grpc_counts(gateway["metrics_port"])
        return {"requests": requests, "seconds": seconds, "cpu_us_per_call": cpu / requests * 1e6,
                "grpc_ok": ok_after - ok_before, "failed": requests - (ok_after - ok_before), **result}

    results = []
    for prompt, names, requests in rows:
        body = bodies[prompt]
        rounds = {name: [] for name in names}
        for _ in range(args.rounds):
            for name in names:
                # A warm-up at the measured concurrency right before each round: every upstream's
                # connection pool full again (idle connections close after 4 s while the other
                # gateways run), code paths hot.
                drive(gateways[name], body, max(requests // 10, 16 * args.clients * args.streams))
                rounds[name].append(measure(gateways[name], body, requests))
        for name in names:
            runs = rounds[name]
            results.append({
                "prompt": prompt, "gateway": name, "upstreams": upstream_counts[name],
                "request_bytes": body.stat().st_size, "requests_per_round": requests,
                "cpu_us_per_call": min(r["cpu_us_per_call"] for r in runs),
                "cpu_us_per_call_rounds": [round(r["cpu_us_per_call"], 2) for r in runs],
                "p99_ms_rounds": [r["p99_ms"] for r in runs],
                "requests_per_second_rounds": [round(r["requests_per_second"]) for r in runs],
                "requests_per_second": statistics.median(r["requests_per_second"] for r in runs),
                "p50_ms": statistics.median(r["p50_ms"] for r in runs),
                "p99_ms": statistics.median(r["p99_ms"] for r in runs),
                "seconds_per_round": statistics.median(r["seconds"] for r in runs),
                "calls": sum(r["requests"] for r in runs),
                "failed": sum(r["failed"] for r in runs),
            })

    # Background work, with no call at all: the fleets' health checks and /metrics reads of every
    # upstream every 2 s. Measured after the pools' idle connections have closed (4 s).
    time.sleep(5)
    before = {name: cpu_seconds(g["process"].pid) for name, g in gateways.items()}
    began = time.monotonic()
    time.sleep(args.idle_seconds)
    elapsed = time.monotonic() - began
    idle = {name: (cpu_seconds(g["process"].pid) - before[name]) / elapsed * 1e3 for name, g in gateways.items()}
    direct = {row["prompt"]: row["cpu_us_per_call"] for row in results if row["gateway"] == "direct"}
    for row in results:
        row["idle_cpu_ms_per_s"] = idle[row["gateway"]]
        row["added_us_per_call"] = row["cpu_us_per_call"] - direct[row["prompt"]]
        # What the background work would have added to this row's CPU per call over a round.
        row["background_us_per_call"] = row["idle_cpu_ms_per_s"] * 1e3 * row["seconds_per_round"] / row["calls"] * \
            args.rounds
    for gateway in gateways.values():
        processes.stop(gateway["process"])
    return results


def print_overhead(args, rows):
    print(f"1. Routing overhead: h2load -c {args.clients} -m {args.streams} -t 1, {args.requests} unary "
          f"CreateChatCompletion (max_tokens 16; 32 KiB prompt: {args.requests // 4}) per round, each after a "
          f"warm-up, {args.rounds} interleaved rounds; one vllm-sim (no prefix cache), each gateway --threads 1, "
          "default policy (prefix)")
    print("   CPU = the gateway's user+system time per call, minimum over the rounds; req/s and latencies: "
          "median round; failed: calls not OK by the gateway's /metrics, all rounds")
    print(f"{'prompt':<12}{'gateway':<10}{'upstreams':>10}{'CPU µs/call':>13}{'vs direct':>11}{'req/s':>9}"
          f"{'p50 ms':>8}{'p99 ms':>8}{'idle ms/s':>11}{'bg µs/call':>12}{'failed':>8}")
    for r in rows:
        added = "-" if r["gateway"] == "direct" else f"{r['added_us_per_call']:+.2f}"
        print(f"{r['prompt']:<12}{'direct' if r['gateway'] == 'direct' else 'config':<10}"
              f"{'-' if r['gateway'] == 'direct' else r['upstreams']:>10}{r['cpu_us_per_call']:>13.2f}{added:>11}"
              f"{r['requests_per_second']:>9.0f}{r['p50_ms']:>8.2f}{r['p99_ms']:>8.2f}"
              f"{r['idle_cpu_ms_per_s']:>11.2f}{r['background_us_per_call']:>12.2f}{r['failed']:>8}")
    print("   idle ms/s: the gateway's CPU with no calls (health checks, upstream /metrics reads); bg µs/call: that "
          "rate over one round's length per call, included in CPU µs/call")
    print("   rounds (CPU µs/call): " + "; ".join(
        f"{r['prompt']} {r['gateway']}: {', '.join(f'{v:.2f}' for v in r['cpu_us_per_call_rounds'])}" for r in rows))


def overhead_target(rows):
    """The issue's target: under 2 µs of CPU per call more than one upstream, for 1, 8 and 64."""
    short = [r for r in rows if r["prompt"] == "short" and r["gateway"] != "direct"]
    met = all(r["added_us_per_call"] < 2 for r in short)
    detail = ", ".join(f"{r['upstreams']} upstream{'s' if r['upstreams'] > 1 else ''} {r['added_us_per_call']:+.2f} µs"
                       for r in short)
    longer = [r for r in rows if r["prompt"] != "short" and r["gateway"] != "direct"]
    if longer:
        detail += " (beside it, " + ", ".join(
            f"{r['prompt'].split(' ', 1)[1]} prompt with {r['upstreams']}: {r['added_us_per_call']:+.2f} µs"
            for r in longer) + ")"
    return met, detail


# MARK: 2. Time to first token

def sim_counters(port):
    """Prefix-cache queries and hits, prompt tokens and finished requests, summed over models."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    totals = {"queries": 0.0, "hits": 0.0, "prompt_tokens": 0.0, "requests": 0.0}
    names = {"vllm:prefix_cache_queries_total": "queries", "vllm:prefix_cache_hits_total": "hits",
             "vllm:prompt_tokens_total": "prompt_tokens", "vllm:request_success_total": "requests"}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        name = line.split("{")[0].split(" ")[0]
        if name in names:
            totals[names[name]] += float(line.rsplit(" ", 1)[1])
    return totals


def make_workload(args):
    """The same sequence of requests for every policy: a zipf-chosen system prompt and a short user
    message of its own each."""
    from vllmgateway.v1 import chat_pb2, common_pb2
    rng = random.Random(args.seed)
    prompts = [text_of(rng, f"System prompt {k}: you are the assistant of team {k} and follow its handbook.",
                       args.prompt_bytes) for k in range(args.prompts)]
    weights = [1 / (k + 1) ** args.zipf for k in range(args.prompts)]
    total = args.warm_up + args.ttft_requests
    chosen = rng.choices(range(args.prompts), weights, k=total)
    requests = []
    for index, k in enumerate(chosen):
        user = f"User {index}: summarise section {rng.randint(1, 99)} for ticket {rng.randint(10000, 99999)}, briefly."
        requests.append(chat_pb2.ChatCompletionRequest(
            model="sim-model", max_tokens=args.max_tokens,
            messages=[chat_pb2.ChatMessage(role="system", text=prompts[k]),
                      chat_pb2.ChatMessage(role="user", text=user)],
            stream_options=common_pb2.StreamOptions(include_usage=True)))
    return prompts, chosen, requests


async def drive_streams(port, requests, concurrency, connections):
    """Streams every request with `concurrency` in flight: [(ttft s or None, total s, code)] in order."""
    import grpc
    from vllmgateway.v1 import service_pb2_grpc
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(connections)]
    for channel in channels:
        await asyncio.wait_for(channel.channel_ready(), 10)
    stubs = [service_pb2_grpc.VLLMServiceStub(c) for c in channels]
    results = [None] * len(requests)
    next_index = 0

    async def worker(number):
        nonlocal next_index
        stub = stubs[number % len(stubs)]
        while next_index < len(requests):
            index = next_index
            next_index += 1
            began = time.perf_counter()
            ttft = None
            code = "OK"
            try:
                async for chunk in stub.StreamChatCompletion(requests[index], timeout=120):
                    if ttft is None and any(choice.delta.content for choice in chunk.choices):
                        ttft = time.perf_counter() - began
            except grpc.aio.AioRpcError as error:
                code = error.code().name
            results[index] = (ttft, time.perf_counter() - began, code)

    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    for channel in channels:
        await channel.close()
    return results


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else None


def ttft_policy(args, work, processes, policy, requests):
    sim_ports = [free_port() for _ in range(args.sims)]
    sims = [processes.start([RELEASE / "vllm-sim", "--port", port, "--threads", "1",
                             "--max-num-seqs", args.max_num_seqs, "--prefix-cache-tokens", args.prefix_cache_tokens,
                             "--prefill-ms-per-token", args.prefill_ms_per_token,
                             "--tokens-per-second", args.tokens_per_second], port, f"sim-{i}")
            for i, port in enumerate(sim_ports)]
    gateway = start_gateway(processes, work, f"ttft-{policy}", [f"http://127.0.0.1:{p}" for p in sim_ports],
                            policy=policy)
    try:
        asyncio.run(drive_streams(gateway["port"], requests[:args.warm_up], args.concurrency, args.connections))
        before = [sim_counters(p) for p in sim_ports]
        ok_before, _ = grpc_counts(gateway["metrics_port"])
        cpu_before = time.process_time()
        began = time.monotonic()
        results = asyncio.run(drive_streams(gateway["port"], requests[args.warm_up:], args.concurrency,
                                            args.connections))
        elapsed = time.monotonic() - began
        client_cpu = (time.process_time() - cpu_before) / elapsed
        ok_after, _ = grpc_counts(gateway["metrics_port"])
        after = [sim_counters(p) for p in sim_ports]
    finally:
        processes.stop(gateway["process"])
        for sim in sims:
            processes.stop(sim)
    delta = [{key: a[key] - b[key] for key in a} for a, b in zip(after, before)]
    ttfts = [ttft for ttft, _, code in results if code == "OK" and ttft is not None]
    codes = {}
    for _, _, code in results:
        codes[code] = codes.get(code, 0) + 1
    queries = sum(d["queries"] for d in delta)
    hits = sum(d["hits"] for d in delta)
    return {
        "policy": policy, "requests": len(results), "seconds": elapsed,
        "requests_per_second": len(results) / elapsed,
        "ttft_ms": {name: percentile(ttfts, q) * 1e3 for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))},
        "ttft_mean_ms": statistics.fmean(ttfts) * 1e3,
        "total_p50_ms": percentile([total for _, total, _ in results], 0.5) * 1e3,
        "prefix_cache_hit_rate": hits / queries if queries else None,
        "prefix_cache_queries": queries, "prefix_cache_hits": hits,
        "requests_per_sim": [int(d["requests"]) for d in delta],
        "hit_rate_per_sim": [d["hits"] / d["queries"] if d["queries"] else None for d in delta],
        "codes": codes, "gateway_ok": ok_after - ok_before,
        # Not OK as the client saw it or as the gateway counted it, whichever says more.
        "failed": max(len(results) - codes.get("OK", 0), len(results) - (ok_after - ok_before)),
        "first_chunk_missing": sum(1 for ttft, _, code in results if code == "OK" and ttft is None),
        "client_cpu_fraction": client_cpu,
    }


def ttft(args, work, processes):
    prompts, chosen, requests = make_workload(args)
    tokens = len(prompts[0].encode()) // 4 + 8
    workload = {
        "sims": args.sims, "max_num_seqs": args.max_num_seqs, "prefix_cache_tokens": args.prefix_cache_tokens,
        "prefill_ms_per_token": args.prefill_ms_per_token, "tokens_per_second": args.tokens_per_second,
        "system_prompts": args.prompts, "system_prompt_bytes": args.prompt_bytes,
        "system_prompt_tokens_in_sim": tokens, "uncached_prefill_ms": tokens * args.prefill_ms_per_token,
        "system_prompts_per_sim_cache": args.prefix_cache_tokens / tokens, "zipf_s": args.zipf,
        "max_tokens": args.max_tokens, "concurrency": args.concurrency, "connections": args.connections,
        "warm_up_requests": args.warm_up, "measured_requests": args.ttft_requests,
        "share_of_top_prompt": chosen[args.warm_up:].count(0) / args.ttft_requests,
    }
    rows = []
    for policy in args.policies:
        rows.append(ttft_policy(args, work, processes, policy, requests))
        print(f"   {policy}: done", file=sys.stderr, flush=True)
    return workload, rows


def print_ttft(workload, rows):
    w = workload
    print()
    print(f"2. Time to first token: {w['sims']} vllm-sim (--max-num-seqs {w['max_num_seqs']} --prefix-cache-tokens "
          f"{w['prefix_cache_tokens']} --prefill-ms-per-token {w['prefill_ms_per_token']:g} --tokens-per-second "
          f"{w['tokens_per_second']:g}), gateway --threads 1")
    print(f"   {w['system_prompts']} system prompts of {w['system_prompt_bytes']} bytes "
          f"(~{w['system_prompt_tokens_in_sim']} sim tokens: {w['uncached_prefill_ms']:.0f} ms prefill uncached; a "
          f"sim's cache holds {w['system_prompts_per_sim_cache']:.1f} of them), zipf s={w['zipf_s']:g} (top prompt "
          f"{w['share_of_top_prompt']:.0%} of calls) + a short user message each; StreamChatCompletion max_tokens "
          f"{w['max_tokens']}; {w['concurrency']} concurrent on {w['connections']} connections")
    print(f"   per policy: sims and gateway started afresh, the same {w['warm_up_requests']} warm-up calls, then the "
          f"same {w['measured_requests']} measured; TTFT = send to first chunk with content; hit rate = sims' "
          "prefix-cache hits / queries (tokens) over the measured calls")
    print(f"{'policy':<13}{'TTFT p50':>10}{'p90':>9}{'p99':>9}{'mean':>9}{'req/s':>9}{'hit rate':>10}"
          f"{'calls per sim':>22}{'failed':>8}{'client CPU':>12}")
    for r in rows:
        t = r["ttft_ms"]
        print(f"{r['policy']:<13}{t['p50']:>8.1f}ms{t['p90']:>7.1f}ms{t['p99']:>7.1f}ms{r['ttft_mean_ms']:>7.1f}ms"
              f"{r['requests_per_second']:>9.1f}{r['prefix_cache_hit_rate']:>10.1%}"
              f"{'/'.join(str(n) for n in r['requests_per_sim']):>22}{r['failed']:>8}"
              f"{r['client_cpu_fraction']:>11.0%}")
    print("   client CPU: this Python client's CPU time over the measured wall time (near 100%: the client, not the "
          "fleet, may set the pace)")
    print("   hit rate per sim: " + "; ".join(
        f"{r['policy']} " + "/".join("-" if h is None else f"{h:.0%}" for h in r["hit_rate_per_sim"]) for r in rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run for smoke testing")
    parser.add_argument("--requests", type=int, default=20000, help="h2load calls per round (routing overhead)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4, help="h2load connections")
    parser.add_argument("--streams", type=int, default=16, help="h2load concurrent streams per connection")
    parser.add_argument("--idle-seconds", type=float, default=6.0, help="window of the idle CPU reading")
    parser.add_argument("--sims", type=int, default=4)
    parser.add_argument("--max-num-seqs", type=int, default=16)
    parser.add_argument("--prefix-cache-tokens", type=int, default=8000,
                        help="per sim: about 5 of the system prompts (1,500 tokens each)")
    parser.add_argument("--prefill-ms-per-token", type=float, default=0.05)
    parser.add_argument("--tokens-per-second", type=float, default=200)
    parser.add_argument("--prompts", type=int, default=16, help="distinct system prompts")
    parser.add_argument("--prompt-bytes", type=int, default=6000)
    parser.add_argument("--zipf", type=float, default=1.0, help="popularity exponent of the prompts (0: uniform)")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--ttft-requests", type=int, default=3000, help="measured calls per policy")
    parser.add_argument("--warm-up", type=int, default=300, help="calls per policy before measuring")
    parser.add_argument("--policies", default="prefix,round_robin,least_load")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-ttft", action="store_true")
    parser.add_argument("--output", default=str(ROOT / "bench-results" / "bench-fleet.json"))
    args = parser.parse_args()
    if args.quick:
        args.requests, args.rounds, args.idle_seconds = 2000, 1, 2.0
        args.ttft_requests, args.warm_up = 200, 40
    args.policies = [p.strip() for p in args.policies.split(",") if p.strip()]

    work = Path(tempfile.mkdtemp(prefix="vllm-grpc-bench-fleet-"))
    generate_stubs(work)
    processes = Processes(work)
    load_before = os.getloadavg()
    # What was built: the commit, and any source file changed beside it (a shared working tree).
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    changed = subprocess.run(git + ["status", "--porcelain", "--", "Sources", "Package.swift"], capture_output=True,
                             text=True).stdout.split("\n")
    report = {"command": " ".join(["tools/bench-fleet"] + sys.argv[1:]), "nproc": os.cpu_count(),
              "loadavg_before": load_before, "commit": commit,
              "sources_changed_beside_commit": [line[3:] for line in changed if line.strip()]}
    try:
        if not args.skip_overhead:
            report["routing_overhead"] = overhead(args, work, processes)
        if not args.skip_ttft:
            report["ttft_workload"], report["ttft"] = ttft(args, work, processes)
    finally:
        processes.stop_all()
    report["loadavg_after"] = os.getloadavg()

    if "routing_overhead" in report:
        print_overhead(args, report["routing_overhead"])
        met, detail = overhead_target(report["routing_overhead"])
        report["target"] = {"routing under 2 µs CPU per call more than direct": {"met": met, "detail": detail}}
        print(f"target: routing adds under 2 µs of CPU per call (short prompt): {'met' if met else 'NOT MET'}: "
              f"{detail}")
    if "ttft" in report:
        print_ttft(report["ttft_workload"], report["ttft"])
    print()
    print(f"working tree at run time: {commit}" + (
        f" with uncommitted changes to {', '.join(report['sources_changed_beside_commit'])}"
        if report["sources_changed_beside_commit"] else ""))
    print(f"machine: {os.cpu_count()} cores, load average {load_before[0]:.2f} {load_before[1]:.2f} "
          f"{load_before[2]:.2f} before, {report['loadavg_after'][0]:.2f} {report['loadavg_after'][1]:.2f} "
          f"{report['loadavg_after'][2]:.2f} after")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2))
    print(f"results: {args.output}")
    failed = sum(r["failed"] for r in report.get("routing_overhead", []) + report.get("ttft", []))
    if failed:
        sys.exit(f"{failed} calls failed")


if __name__ == "__main__":
    main()
