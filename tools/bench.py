"""Side-by-side benchmark of the gateway against direct HTTP to vllm-sim and against nghttpx.

For each scenario: requests/s, p50/p99 latency (h2load's per-request log), the proxy's CPU time
per call (utime + stime from /proc) and per streamed chunk, its peak RSS, and the ratios. A gRPC
call counts as failed unless the gateway's own counters (its /metrics) say it ended OK: h2load
only sees HTTP statuses.

The threads rows (issue 14; `--only threads` runs just them, `--skip-threads` leaves them out) set
the gateway with --threads 1 and 2 beside nghttpx with --workers=1 and 2, and project how two
threads would scale on a machine with cores to spare (see `threads_scenario`).
"""

import argparse
import json
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RELEASE = ROOT / ".build" / "release"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, process, name):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{name} exited early")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{name} did not start")


def start_process(processes, command, port, name, env=None):
    """Starts `command` (its output discarded), adds it to `processes` for the caller to stop,
    and waits until it listens on `port`."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    processes.append(process)
    wait_for_port(port, process, name)
    return process


def sim_command(port):
    """vllm-sim as the bench's rows run it: one thread, embeddings of 1024 dimensions."""
    return [str(RELEASE / "vllm-sim"), "--port", str(port), "--embedding-dimensions", "1024", "--threads", "1"]


def generate_stubs(work: Path):
    """Python messages and gRPC stubs from proto/, as tests/python/conftest.py makes them, in `work`
    (conftest regenerates its own directory on import, which a concurrent test run would see)."""
    from grpc_tools import protoc
    generated = work / "generated"
    generated.mkdir()
    well_known = Path(protoc.__file__).resolve().parent / "_proto"
    files = [str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto").rglob("*.proto")]
    if protoc.main(["protoc", f"-I{ROOT / 'proto'}", f"-I{well_known}", f"--python_out={generated}",
                    f"--grpc_python_out={generated}"] + files) != 0:
        sys.exit("could not generate stubs")
    sys.path.insert(0, str(generated))


def process_tree(pid):
    """The process and its descendants (nghttpx does its work in a forked worker)."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for child in children:
            pids += process_tree(int(child))
    return pids


def threads_of(pid):
    """The /proc task folder of every thread of the process tree."""
    for member in process_tree(pid):
        yield from Path(f"/proc/{member}/task").iterdir()


def cpu_seconds(pid):
    """CPU time of the process tree, user and system: the scheduler's nanosecond count of each
    thread (/proc/.../schedstat), since utime and stime come in 10 ms ticks, too coarse for a
    few thousand calls of some microseconds each."""
    total = 0
    for task in threads_of(pid):
        total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def cpu_ticks(pid):
    """(user, system) clock ticks of the process tree's threads (/proc/.../task/*/stat): too coarse
    for the CPU time itself, but over a round of seconds a fair split of it."""
    user = system = 0
    for task in threads_of(pid):
        # The fields after the command name, which is in parentheses: utime is the 12th, stime the 13th.
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        user += int(fields[11])
        system += int(fields[12])
    return user, system


def memory_kib(pid, field):
    total = 0
    for member in process_tree(pid):
        for line in Path(f"/proc/{member}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                total += int(line.split()[1])
    return total


def grpc_counts(metrics_port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    values = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return int(values['vllm_grpc_gateway_calls_handled_total{grpc_code="OK"}']), \
        int(values["vllm_grpc_gateway_calls_started_total"])


# The gateway's own latency histograms (its /metrics): what it adds, timed inside it from the
# arrival of its input to the handover of its output to a socket.
OWN_DELAYS = ("request_forward_delay", "message_delay", "first_message_added_delay")


def own_delay_buckets(metrics_port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    buckets = {name: [] for name in OWN_DELAYS}
    for line in text.splitlines():
        for name in OWN_DELAYS:
            if line.startswith(f"vllm_grpc_gateway_{name}_seconds_bucket{{"):
                bound = line.split('le="')[1].split('"')[0]
                buckets[name].append((float("inf") if bound == "+Inf" else float(bound), int(line.rsplit(" ", 1)[1])))
    return buckets


def bucket_quantile(before, after, q):
    """The q-quantile, in µs, of what was observed between two readings of a cumulative histogram,
    interpolated within its bucket."""
    counts = [(bound, a - b) for (bound, a), (_, b) in zip(after, before)]
    total = counts[-1][1] if counts else 0
    if total == 0:
        return None
    rank = q * total
    lower, below = 0.0, 0
    for bound, cumulative in counts:
        if cumulative >= rank:
            if bound == float("inf"):
                return lower * 1e6
            return (lower + (bound - lower) * (rank - below) / max(cumulative - below, 1)) * 1e6
        lower, below = bound, cumulative
    return lower * 1e6


def grpc_frame(message: bytes) -> bytes:
    return b"\0" + len(message).to_bytes(4, "big") + message


def make_bodies(work: Path):
    """Request bodies for each scenario: JSON for the sim and nghttpx, gRPC frames for the gateway."""
    from grpc_tools import protoc
    generated = work / "generated"
    generated.mkdir()
    well_known = Path(protoc.__file__).resolve().parent / "_proto"
    files = [str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto").rglob("*.proto")]
    if protoc.main(["protoc", f"-I{ROOT / 'proto'}", f"-I{well_known}", f"--python_out={generated}"] + files) != 0:
        sys.exit("could not generate stubs")
    sys.path.insert(0, str(generated))
    from vllmgateway.v1 import chat_pb2, common_pb2, embeddings_pb2
    message = [chat_pb2.ChatMessage(role="user", text="Tell me a story about a fox.")]
    bodies = {}

    def write(name, json_body, proto):
        (work / f"{name}.json").write_text(json.dumps(json_body))
        (work / f"{name}.grpc").write_bytes(grpc_frame(proto.SerializeToString()))
        bodies[name] = (work / f"{name}.json", work / f"{name}.grpc")

    write("unary", {"model": "sim-model", "messages": [{"role": "user", "content": message[0].text}], "max_tokens": 16},
          chat_pb2.ChatCompletionRequest(model="sim-model", messages=message, max_tokens=16))
    stream_options = common_pb2.StreamOptions(include_usage=True)
    write("stream", {"model": "sim-model", "messages": [{"role": "user", "content": message[0].text}], "max_tokens": 128,
                     "stream": True, "stream_options": {"include_usage": True}},
          chat_pb2.ChatCompletionRequest(model="sim-model", messages=message, max_tokens=128,
                                         stream_options=stream_options))
    paced = chat_pb2.ChatCompletionRequest(model="sim-model", messages=message, max_tokens=20,
                                           stream_options=stream_options)
    paced.extra_body.update({"vllm_sim": {"tokens_per_second": 20}})
    write("paced", {"model": "sim-model", "messages": [{"role": "user", "content": message[0].text}], "max_tokens": 20,
                    "stream": True, "stream_options": {"include_usage": True}, "vllm_sim": {"tokens_per_second": 20}},
          paced)
    # Paced like "paced", with every token stamped by the sim for the stream-latency probe.
    stamped = chat_pb2.ChatCompletionRequest(model="sim-model", messages=message, max_tokens=20,
                                             stream_options=stream_options)
    stamped.extra_body.update({"vllm_sim": {"tokens_per_second": 20, "stamp": True}})
    write("stamped", {"model": "sim-model", "messages": [{"role": "user", "content": message[0].text}],
                      "max_tokens": 20, "stream": True, "stream_options": {"include_usage": True},
                      "vllm_sim": {"tokens_per_second": 20, "stamp": True}},
          stamped)
    inputs = [f"embedding input {i}" for i in range(16)]
    write("embeddings", {"model": "sim-model", "input": inputs},
          embeddings_pb2.EmbeddingRequest(model="sim-model", input_texts=common_pb2.StringList(values=inputs)))
    return bodies


def h2load(url, body, requests, clients, streams, headers, log, h1=False):
    Path(log).unlink(missing_ok=True)
    command = ["h2load", "-n", str(requests), "-c", str(clients), "-m", str(streams), "-t", "1", "-d", str(body),
               f"--log-file={log}"] + (["--h1"] if h1 else []) + [a for h in headers for a in ("-H", h)] + [url]
    output = subprocess.run(command, capture_output=True, text=True).stdout
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed", output)
    rate = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", output)
    # Response bodies (HTTP/1.1) or DATA frame payloads (HTTP/2, for gRPC the framed messages).
    data = re.search(r"traffic: .* \((\d+)\) data", output)
    durations = sorted(int(line.split("\t")[2]) for line in Path(log).read_text().splitlines() if line.count("\t") >= 2)
    return {
        "succeeded_http": int(done.group(2)) if done else 0,
        "requests_per_second": float(rate.group(1)) if rate else 0.0,
        "p50_ms": durations[len(durations) // 2] / 1000 if durations else None,
        "p99_ms": durations[int(len(durations) * 0.99)] / 1000 if durations else None,
        "reply_bytes": int(data.group(1)) / int(done.group(2)) if data and done and int(done.group(2)) else None,
    }


def probe(mode, port, body, headers, streams, connections, output, ramp, seconds, path="/v1/chat/completions",
          grpc=False, after_ramp=None):
    """Runs stream-latency-probe: a steady load of `streams` open streams (each replaced when it ends)
    for `seconds` after a ramp of `ramp` seconds, timing every chunk by the sim's stamps. Calls
    `after_ramp` once the ramp is over (and with it the opening of upstream connections)."""
    command = [str(RELEASE / "stream-latency-probe"), mode, "--port", str(port), "--path", path, "--body", str(body),
               "--ramp-seconds", str(ramp), "--duration-seconds", str(seconds), "--output", str(output)]
    command += [a for h in headers for a in ("--header", h)] + (["--grpc"] if grpc else [])
    if mode == "http1":
        command += ["--streams", str(streams)]
    else:
        command += ["--connections", str(connections), "--streams-per-connection", str(streams // connections)]
    Path(output).unlink(missing_ok=True)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if after_ramp:
        time.sleep(ramp + 0.3)
        after_ramp()
    stdout, stderr = process.communicate()
    if process.returncode != 0 or not Path(output).exists():
        sys.exit(f"stream-latency-probe failed: {stderr.strip() or stdout.strip()}")
    summary = json.loads(Path(output).read_text())
    return {"requests": summary["all_streams"], "succeeded_http": summary["all_streams"] - summary["failed"],
            "probe_failed": summary["failed"], **summary}


def measure(name, process, metrics_port, run):
    ok_before, started_before = grpc_counts(metrics_port) if metrics_port else (0, 0)
    cpu_before = cpu_seconds(process.pid) if process else 0
    ticks_before = cpu_ticks(process.pid) if process else (0, 0)
    result = run()
    result["cpu_us_per_call"] = ((cpu_seconds(process.pid) - cpu_before) / result["requests"] * 1e6) if process else None
    if process:
        # Where the time goes: in the proxy's own code (user), or in the kernel's socket work (system).
        user, system = (after - before for after, before in zip(cpu_ticks(process.pid), ticks_before))
        result["user_us_per_call"] = result["cpu_us_per_call"] * user / (user + system) if user + system else None
    if metrics_port:
        ok_after, started_after = grpc_counts(metrics_port)
        result["grpc_ok"] = ok_after - ok_before
        result["failed"] = result["requests"] - result["grpc_ok"]
    else:
        result["failed"] = result["requests"] - result["succeeded_http"]
    if process:
        result["peak_rss_mib"] = memory_kib(process.pid, "VmHWM") / 1024
    result["name"] = name
    return result


def alternate_rounds(row, paths, rounds):
    """Runs each path `rounds` times, alternating, so a noisy moment of this shared machine hits one
    round of each rather than one path; each path reports its median round by CPU per call."""
    results = {name: [] for name in paths}
    for _ in range(rounds):
        for name, run in paths.items():
            results[name].append(run())
    for name, results_of_path in results.items():
        ordered = sorted(results_of_path, key=lambda r: r["cpu_us_per_call"] or r["requests_per_second"])
        chosen = dict(ordered[len(ordered) // 2])
        chosen["failed"] = sum(r["failed"] for r in results_of_path)
        chosen["cpu_us_per_call_rounds"] = [r["cpu_us_per_call"] for r in results_of_path]
        row[name] = chosen
    return row


def open_streams_row(args, work, bodies, fresh, stop):
    """`--concurrent-streams` paced streams open at once through each path, in `--rounds` alternating
    rounds (at most 3), each on a newly started process: its memory per open stream is its peak RSS
    during the run less its RSS once warmed up by a few streams, over the streams. A process that
    served earlier rows holds freed heap it reuses here, which moved this figure by about 1 KiB from
    one run to the next; a fresh one starts each round alike. Reported: the median round, and all."""
    json_body, grpc_body = bodies
    row = {"scenario": f"{args.concurrent_streams} open streams", "chunks_per_call": 22}
    rounds = {"nghttpx": [], "gateway": []}
    for _ in range(min(args.rounds, 3)):
        for name in rounds:
            process, url, headers, metrics = fresh(name)
            body = json_body if name == "nghttpx" else grpc_body
            try:
                # Warm-up: the code paths and lazy state of a first call, not the pools of a load.
                h2load(url, body, 16, 4, 4, headers, work / "h2load.log")
                baseline = memory_kib(process.pid, "VmRSS")
                peak = [baseline]
                done = threading.Event()

                def sample():
                    while not done.is_set():
                        peak[0] = max(peak[0], memory_kib(process.pid, "VmRSS"))
                        time.sleep(0.05)

                sampler = threading.Thread(target=sample)
                sampler.start()
                per_connection = args.concurrent_streams // args.concurrent_connections
                own_before = own_delay_buckets(metrics) if metrics else None
                try:
                    result = measure(name, process, metrics, lambda: {
                        "requests": args.concurrent_streams,
                        **h2load(url, body, args.concurrent_streams, args.concurrent_connections, per_connection,
                                 headers, work / "h2load.log")})
                finally:
                    done.set()
                    sampler.join()
                result["memory_kib_per_open_stream"] = (peak[0] - baseline) / args.concurrent_streams
                if own_before:
                    # The delay the gateway adds to each chunk with all these streams open, by its own
                    # histograms (h2load cannot time chunks).
                    own_after = own_delay_buckets(metrics)
                    result["own_message_delay_us"] = {
                        p: bucket_quantile(own_before["message_delay"], own_after["message_delay"], q)
                        for p, q in (("p50", 0.5), ("p99", 0.99))}
                rounds[name].append(result)
            finally:
                stop(process)
    for name, results_of_path in rounds.items():
        ordered = sorted(results_of_path, key=lambda r: r["memory_kib_per_open_stream"])
        chosen = dict(ordered[len(ordered) // 2])
        chosen["failed"] = sum(r["failed"] for r in results_of_path)
        chosen["memory_kib_per_open_stream_rounds"] = [r["memory_kib_per_open_stream"] for r in results_of_path]
        row[name] = chosen
    return row


def self_signed_certificate(work: Path):
    """A P-256 certificate for 127.0.0.1, for the TLS rows (both servers serve the same one)."""
    key, certificate = work / "tls-key.pem", work / "tls-cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(certificate)], check=True, capture_output=True)
    return key, certificate


# The stamped request: 20 tokens at 20 per second, so a stream lasts about 1.1 s (role chunk, 20
# tokens, usage, [DONE]); the ramp spreads the first streams' starts over that much.
LATENCY_STREAM_SECONDS = 1.1


def latency_scenario(args, work, bodies, sim_port, proxy, proxy_port, gateway, gateway_port, metrics_port,
                     grpc_headers, json_headers):
    """Per-chunk delay and time to first token under a steady load of --latency-streams open streams,
    from the sim's CLOCK_MONOTONIC stamps: direct HTTP/1.1 (one connection per stream), nghttpx and
    the gateway (HTTP/2, at most 100 streams per connection)."""
    json_body, grpc_body = bodies
    streams = args.latency_streams
    connections = max(1, -(-streams // 100))
    output = work / "probe.json"
    row = {"scenario": f"{streams} streams, per-chunk delay", "open_streams": streams,
           "seconds": args.latency_seconds, "ramp_seconds": LATENCY_STREAM_SECONDS}
    timing = dict(streams=streams, connections=connections, output=output, ramp=LATENCY_STREAM_SECONDS,
                  seconds=args.latency_seconds)
    row["direct"] = measure("direct", None, None, lambda: probe(
        "http1", sim_port, json_body, json_headers, **timing))
    row["nghttpx"] = measure("nghttpx", proxy, None, lambda: probe(
        "h2", proxy_port, json_body, json_headers, **timing))
    # The gateway's own histograms from the end of the ramp on, like the probe's figures: the
    # ramp opens the upstream connections, which a steady load then reuses.
    own = {}
    row["gateway"] = measure("gateway", gateway, metrics_port, lambda: probe(
        "h2", gateway_port, grpc_body, grpc_headers, path="/vllmgateway.v1.VLLMService/StreamChatCompletion",
        grpc=True, after_ramp=lambda: own.update(before=own_delay_buckets(metrics_port)), **timing))
    own_before = own["before"]
    own_after = own_delay_buckets(metrics_port)
    row["gateway_own_us"] = {
        name: {"count": own_after[name][-1][1] - own_before[name][-1][1],
               **{p: None if (v := bucket_quantile(own_before[name], own_after[name], q)) is None else round(v, 1)
                  for p, q in (("p50", 0.5), ("p99", 0.99))}}
        for name in OWN_DELAYS}
    # Direct once more: how far its own percentiles move between two runs on this machine.
    again = probe("http1", sim_port, json_body, json_headers, **timing)
    direct = row["direct"]
    row["direct_rerun_spread_us"] = {
        key: {p: round(abs(again[key][p] - direct[key][p]), 1) if None not in (again[key][p], direct[key][p]) else None
              for p in ("p50", "p99")}
        for key in ("chunk_delay_us", "ttft_us")}
    row["added_us"] = {}
    for name in ("nghttpx", "gateway"):
        path = row[name]

        def minus(key, percentile):
            if path[key][percentile] is None or direct[key][percentile] is None:
                return None
            return round(path[key][percentile] - direct[key][percentile], 1)

        row["added_us"][name] = {
            "chunk_delay": {"p50": minus("chunk_delay_us", "p50"), "p99": minus("chunk_delay_us", "p99")},
            "ttft": {"p50": minus("ttft_us", "p50"), "p99": minus("ttft_us", "p99")},
        }
    # From outside, under 100 µs only means something if direct's own TTFT p99 holds still to
    # better than that; the gateway's own histograms answer regardless.
    added = row["added_us"]["gateway"]["ttft"]["p99"]
    spread = row["direct_rerun_spread_us"]["ttft_us"]["p99"]
    row["gateway_ttft_p99_added_under_100us_seen_from_outside"] = \
        None if added is None or spread is None or spread >= 100 else added < 100
    own = row["gateway_own_us"]["first_message_added_delay"]["p99"]
    row["gateway_ttft_p99_added_under_100us"] = None if own is None else own < 100
    return row


def print_latency(row):
    def us(value):
        return f"{value:.1f}" if value is not None else "-"

    print()
    print(f"{row['scenario']}: {row['open_streams']} streams kept open for {row['seconds']:g} s after a "
          f"{row['ramp_seconds']:g} s ramp, a first chunk then 20 tokens at 20/s each; delays from the sim's "
          "CLOCK_MONOTONIC stamps")
    print(f"{'path':<9}{'streams':>8}{'chunks':>9}{'chunk p50 µs':>14}{'chunk p99 µs':>14}{'first p99 µs':>14}"
          f"{'TTFT p50 µs':>13}{'TTFT p99 µs':>13}{'failed':>8}")
    for name in ("direct", "nghttpx", "gateway"):
        r = row[name]
        print(f"{name:<9}{r['streams']:>8}{r['chunks']:>9}{us(r['chunk_delay_us']['p50']):>14}"
              f"{us(r['chunk_delay_us']['p99']):>14}{us(r['first_chunk_delay_us']['p99']):>14}"
              f"{us(r['ttft_us']['p50']):>13}{us(r['ttft_us']['p99']):>13}{r['failed']:>8}")
    for name in ("nghttpx", "gateway"):
        a = row["added_us"][name]
        print(f"added by {name:<8} (minus direct): chunk p50 {us(a['chunk_delay']['p50'])} µs, "
              f"p99 {us(a['chunk_delay']['p99'])} µs; TTFT p50 {us(a['ttft']['p50'])} µs, "
              f"p99 {us(a['ttft']['p99'])} µs")
    spread = row["direct_rerun_spread_us"]
    print(f"direct run again moved by: chunk p50 {us(spread['chunk_delay_us']['p50'])} µs, "
          f"p99 {us(spread['chunk_delay_us']['p99'])} µs; TTFT p50 {us(spread['ttft_us']['p50'])} µs, "
          f"p99 {us(spread['ttft_us']['p99'])} µs")
    own = row["gateway_own_us"]
    print(f"the gateway's own share (its /metrics histograms, input arrival to socket handover): per chunk "
          f"p50 {us(own['message_delay']['p50'])} µs, p99 {us(own['message_delay']['p99'])} µs; request "
          f"forwarding p50 {us(own['request_forward_delay']['p50'])} µs, p99 "
          f"{us(own['request_forward_delay']['p99'])} µs; TTFT added p50 "
          f"{us(own['first_message_added_delay']['p50'])} µs, p99 {us(own['first_message_added_delay']['p99'])} µs "
          f"({own['first_message_added_delay']['count']} streams)")
    outside = {True: "yes", False: "no", None: "cannot tell, direct's own TTFT p99 moved by more than that "
               "between two runs"}[row["gateway_ttft_p99_added_under_100us_seen_from_outside"]]
    inside = {True: "yes", False: "no", None: "no data"}[row["gateway_ttft_p99_added_under_100us"]]
    print(f"gateway adds under 100 µs to TTFT at p99: {inside} by its own timing; from outside: {outside}")
    gateway = row["gateway"]
    if gateway["probe_failed"] != gateway["failed"]:
        print(f"note: the probe counted {gateway['probe_failed']} failed gateway streams, its /metrics "
              f"{gateway['failed']}")


def features_config(sim_port, access_log, check_interval_seconds=None):
    """Issue 14's features, all on: a fleet of 8 upstreams routed by the default (prefix) policy,
    all of them the one sim (named, with their models, so that nothing is discovered), a client key
    with limits, and the access log. The caller adds --metrics-listen. `check_interval_seconds`
    spaces the health checks (each a /health and a /metrics read of every upstream) for counts
    that must not charge that background work to the calls."""
    config = {"upstreams": [{"name": f"sim-{i}", "url": f"http://127.0.0.1:{sim_port}", "models": ["sim-model"]}
                            for i in range(8)],
              "access_log": str(access_log), "auth": {"keys": [
                  {"id": "bench", "key": "sk-bench", "models": ["sim-model"], "requests_per_minute": 100_000_000,
                   "tokens_per_minute": 1_000_000_000, "max_concurrent_streams": 100_000}]}}
    if check_interval_seconds:
        config["health"] = {"check_interval_seconds": check_interval_seconds}
    return config


def observability_row(args, work, bodies, sim_port, start, grpc_headers):
    """All off is the unary row's gateway (one --upstream, nothing else); all on routes over 8
    upstreams with a key, limits, metrics and the access log (features_config)."""
    on_config = work / "all-on.json"
    on_config.write_text(json.dumps(features_config(sim_port, work / "access.log")))
    off_port, on_port, on_metrics = free_port(), free_port(), free_port()
    common = ["--threads", "1", "--log-level", "error"]
    off = start([str(RELEASE / "vllm-grpc-gateway"), "--listen", f"127.0.0.1:{off_port}", "--upstream",
                 f"http://127.0.0.1:{sim_port}"] + common, off_port, "gateway (all off)")
    on = start([str(RELEASE / "vllm-grpc-gateway"), "--listen", f"127.0.0.1:{on_port}", "--config", str(on_config),
                "--metrics-listen", f"127.0.0.1:{on_metrics}"] + common, on_port, "gateway (all on)")
    _, grpc_body = bodies["unary"]
    log = work / "h2load.log"
    requests = args.requests

    def url(port):
        return f"http://127.0.0.1:{port}/vllmgateway.v1.VLLMService/CreateChatCompletion"

    on_headers = grpc_headers + ["x-api-key: sk-bench"]
    h2load(url(off_port), grpc_body, requests // 10, args.clients, args.streams, grpc_headers, log)
    h2load(url(on_port), grpc_body, requests // 10, args.clients, args.streams, on_headers, log)
    row = {"scenario": "fleet of 8+keys+limits+metrics+log", "chunks_per_call": 1, "rounds": args.rounds}
    alternate_rounds(row, {
        "all off": lambda: measure("all off", off, None, lambda: {
            "requests": requests, **h2load(url(off_port), grpc_body, requests, args.clients, args.streams,
                                           grpc_headers, log)}),
        "all on": lambda: measure("all on", on, on_metrics, lambda: {
            "requests": requests, **h2load(url(on_port), grpc_body, requests, args.clients, args.streams,
                                           on_headers, log)}),
    }, args.rounds)
    # Every call of the "on" gateway was admitted by its key and written to the log.
    time.sleep(0.3)
    row["access_log_lines"] = len((work / "access.log").read_text().splitlines())
    return row


def check_targets(results, latency):
    """Each of the issue's targets, from this run's figures: (met, what was measured)."""
    rows = {row["scenario"]: row for row in results}
    targets = {}
    unary = rows["unary chat"]
    ratio = unary["gateway"]["cpu_us_per_call"] / unary["nghttpx"]["cpu_us_per_call"]
    targets["unary chat CPU within 1.5x of nghttpx"] = (ratio <= 1.5, f"{ratio:.2f}x")
    targets["unary chat CPU at most nghttpx's (issue 14)"] = (ratio <= 1.0, f"{ratio:.2f}x")
    stream = rows["stream 128 chunks"]
    beyond = (stream["gateway"]["cpu_us_per_call"] - stream["nghttpx"]["cpu_us_per_call"]) / stream["chunks_per_call"]
    targets["streaming: at most 1 µs per chunk beyond nghttpx"] = (beyond <= 1.0, f"{beyond:.2f} µs per chunk")
    targets["streaming: at most 0.5 µs per chunk beyond nghttpx (issue 14)"] = (
        beyond <= 0.5, f"{beyond:.2f} µs per chunk")
    own = latency["gateway_own_us"]["first_message_added_delay"]["p99"]
    targets[f"TTFT added under 100 µs at p99, {latency['open_streams']} streams"] = (
        own is not None and own < 100, f"{own} µs by the gateway's own timing")
    many = next(row for row in results if row["scenario"].endswith("open streams"))["gateway"]
    targets["open streams: under 20 KiB each, no failed call"] = (
        many["memory_kib_per_open_stream"] < 20 and many["failed"] == 0,
        f"{many['memory_kib_per_open_stream']:.1f} KiB per stream, {many['failed']} failed")
    targets["open streams: under 6 KiB each (issue 14)"] = (
        many["memory_kib_per_open_stream"] < 6, f"{many['memory_kib_per_open_stream']:.2f} KiB per stream")
    embeddings = rows["embeddings 16x1024"]
    smaller = embeddings["direct"]["reply_bytes"] / embeddings["gateway"]["reply_bytes"]
    targets["embeddings reply at least 2x smaller than vLLM's JSON"] = (smaller >= 2, f"{smaller:.2f}x smaller")
    tls = rows["unary chat TLS"]
    ratio = tls["gateway"]["cpu_us_per_call"] / tls["nghttpx"]["cpu_us_per_call"]
    targets["TLS unary chat CPU within 1.5x of nghttpx's TLS"] = (ratio <= 1.5, f"{ratio:.2f}x")
    everything = rows["fleet of 8+keys+limits+metrics+log"]
    added = everything["all on"]["cpu_us_per_call"] - everything["all off"]["cpu_us_per_call"]
    targets["routing over 8 upstreams, keys, limits, metrics and the access log add under 3 µs per call"] = (
        added < 3 and everything["all on"]["failed"] == 0, f"{added:.1f} µs per call, "
        f"{everything['all on']['failed']} failed")
    return targets


def thread_cpu(pid):
    """Each thread of the process tree: {tid: (name, CPU nanoseconds)}, from /proc/.../task/*/comm
    and schedstat. A thread that ends while it is read is left out."""
    threads = {}
    for task in threads_of(pid):
        try:
            threads[int(task.name)] = ((task / "comm").read_text().strip(),
                                       int((task / "schedstat").read_text().split()[0]))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return threads


def context_switches(pid):
    """Context switches of the process tree's threads so far, voluntary (a thread waiting, as an
    event loop in epoll_wait) and not."""
    total = 0
    for task in threads_of(pid):
        try:
            for line in (task / "status").read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                    total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def socket_syscalls(pid):
    """Read and write system calls of the process tree so far (/proc/PID/io's syscr and syscw, which
    count read, readv, write and writev, as NIO and nghttpx use on sockets): fewer per call means
    more bytes moved per call, more coalescing."""
    total = 0
    for member in process_tree(pid):
        for line in Path(f"/proc/{member}/io").read_text().splitlines():
            if line.startswith(("syscr:", "syscw:")):
                total += int(line.split()[1])
    return total


def machine_jiffies():
    """(busy, all) clock ticks of every core together, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


def profile_freshness():
    """Whether the sources are still those the release build's profile (tools/pgo, see
    tools/release-flags) was recorded from: what changed since is optimized without it, so a
    figure measured then is not all the change's own."""
    recorded = ROOT / "tools" / "pgo" / "profiled-sources"
    if not recorded.exists():
        return "profile: none recorded (tools/profile-gateway)"
    git = ["git", "-C", str(ROOT)]
    now = subprocess.run(git + ["rev-parse", "HEAD:Sources"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(git + ["diff", "--quiet", "HEAD", "--", "Sources"]).returncode != 0
    then = recorded.read_text().split()
    if then and then[0] == now and not dirty and len(then) == 1:
        return "profile: recorded from these sources"
    return ("profile: the sources changed since it was recorded; functions that changed are optimized without it "
            "(tools/profile-gateway records it again)")


def settle(seconds_quiet=3, busiest_share=0.1, limit_seconds=90):
    """Waits, before the first row, until the machine has been quiet for `seconds_quiet` seconds
    running (under `busiest_share` of its cores busy), at most `limit_seconds`; what is still being
    written to disk is written first. `tools/bench` builds the release products just before it
    measures, and one run's first rows were far off (nghttpx's unary call 49.9 us against about
    35 in other runs): the run now says how quiet the machine was when it began. Returns how long
    it waited and the last second's busy share."""
    os.sync()
    started = time.monotonic()
    quiet, share = 0, 1.0
    busy, total = machine_jiffies()
    while quiet < seconds_quiet and time.monotonic() - started < limit_seconds:
        time.sleep(1)
        now_busy, now_total = machine_jiffies()
        share = (now_busy - busy) / max(now_total - total, 1)
        busy, total = now_busy, now_total
        quiet = quiet + 1 if share < busiest_share else 0
    return time.monotonic() - started, share


def children_cpu_seconds():
    """CPU time of this script's waited-for children (h2load, once it has ended)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def busiest_share(thread_ns, count):
    """Among the `count` busiest threads of `thread_ns` ({tid: (name, ns)}): each one's share of
    their CPU, the busiest first."""
    busiest = sorted((ns for _, ns in thread_ns.values()), reverse=True)[:count]
    total = sum(busiest)
    return [ns / total for ns in busiest] if total else []


def projected_scaling(shares, cpu_per_call_1, cpu_per_call_2):
    """What 2 threads would give over 1 on a machine with cores to spare, where the proxy's own
    CPU is the limit: the busiest thread saturates first, so the proxy serves at most
    1 / (max_share × cpu_per_call_2) calls per CPU-second against 1 / cpu_per_call_1 with one
    thread, that is 2 × balance × (cpu_per_call_1 / cpu_per_call_2) with balance = mean share /
    max share (1 for an even split; the mean of two shares is 1/2). min/max would overstate an
    imbalance: shares 0.55/0.45 cap the gain at 1/0.55 = 1.82x, which mean/max gives and min/max
    (0.82, so 1.64x) does not."""
    if not shares or not cpu_per_call_1 or not cpu_per_call_2:
        return None, None
    balance = (1 / len(shares)) / max(shares)
    return balance, len(shares) * balance * cpu_per_call_1 / cpu_per_call_2


def connections_by_loop(pid, listen_port, upstream_port):
    """For each epoll instance of the process (a NIO event loop has one) that watches any TCP
    connection: how many accepted connections (local port `listen_port`) and how many connections
    to `upstream_port` it watches, the larger first. /proc/PID/fdinfo of an epoll descriptor lists
    the inode of each descriptor it watches; /proc/PID/net/tcp gives each socket inode's ports."""
    ports = {}
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A":  # not a listening socket
                ports[int(fields[9])] = (int(fields[1].rsplit(":", 1)[1], 16), int(fields[2].rsplit(":", 1)[1], 16))
    loops = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) != "anon_inode:[eventpoll]":
                continue
            watched = [int(line.split("ino:")[1].split()[0], 16)
                       for line in (Path(f"/proc/{pid}/fdinfo") / fd.name).read_text().splitlines()
                       if line.startswith("tfd:")]
        except (FileNotFoundError, ProcessLookupError):
            continue
        accepted = sum(1 for inode in watched if ports.get(inode, (0, 0))[0] == listen_port)
        upstream = sum(1 for inode in watched if ports.get(inode, (0, 0))[1] == upstream_port)
        if accepted or upstream:
            loops.append((accepted, upstream))
    return sorted(loops, reverse=True)


def sample_connections_by_loop(pid, listen_port, upstream_port, run):
    """`connections_by_loop` while `run` runs: the sample that saw the most accepted connections."""
    best, done = [], threading.Event()

    def sample():
        while not done.wait(0.02):
            loops = connections_by_loop(pid, listen_port, upstream_port)
            if sum(a for a, _ in loops) > sum(a for a, _ in best):
                best[:] = loops

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        run()
    finally:
        done.set()
        sampler.join()
    return best


THREAD_COUNTS = (1, 2)


def threads_scenario(args, work, bodies, start, grpc_headers, json_headers):
    """Issue 14: the gateway with --threads 1 and --threads 2, and nghttpx with --workers=1 and
    --workers=2, in front of one vllm-sim (two threads of its own), unary chat and streaming chat
    in alternating rounds, h2load with --threads-connections connections so that both of a
    proxy's threads get some (NIO hands accepted connections to its event loops in turn).

    Throughput: the median round's requests/s of each, and 2 threads over 1. On a machine of two
    cores shared with h2load and the sim that ratio cannot show scaling (the machine is busy with
    one thread already), so each row also reports what predicts it where there are cores to
    spare (see `projected_scaling`): CPU per call at 2 threads against 1 (what working on two
    threads costs: cross-thread traffic, locks, less batching per wake-up) and how evenly the work
    splits over the two threads (the gateway's NIO event loop threads, named NIO-ELT-*, from
    /proc/PID/task/*/schedstat over all rounds; nghttpx's two busiest threads, its workers); and,
    to read those by, context switches and socket reads and writes per call (an event loop with
    less to do per wake-up sleeps and wakes more often, and coalesces fewer chunks into one
    write, which costs CPU), how busy the machine was and with what, and which
    event loop watches which connections (`connections_by_loop`).

    CPU per call depends on how saturated the proxy is (a busy loop handles more events per
    wake-up), and here the proxy shares two cores with h2load, the sim and whatever else runs,
    so the projection is an estimate: repeat it, and trust it more when "other" is near zero."""
    sim_port = free_port()
    sim = start([str(RELEASE / "vllm-sim"), "--port", str(sim_port), "--threads", "2"], sim_port, "vllm-sim (threads)")
    connections, streams = args.threads_connections, args.streams
    proxies = {}
    for threads in THREAD_COUNTS:
        port, metrics = free_port(), free_port()
        proxies[f"gateway {threads}"] = (start(
            [str(RELEASE / "vllm-grpc-gateway"), "--listen", f"127.0.0.1:{port}", "--upstream",
             f"http://127.0.0.1:{sim_port}", "--threads", str(threads), "--log-level", "error",
             "--metrics-listen", f"127.0.0.1:{metrics}"], port, f"gateway (--threads {threads})"), port, metrics)
        port = free_port()
        proxies[f"nghttpx {threads}"] = (start(
            ["nghttpx", "--conf=/dev/null", f"--frontend=127.0.0.1,{port};no-tls", f"--backend=127.0.0.1,{sim_port}",
             f"--workers={threads}", "--log-level=ERROR", "--errorlog-file=/dev/null",
             f"--frontend-http2-max-concurrent-streams={max(streams, 100)}",
             f"--backend-connections-per-host={connections * streams}"], port, f"nghttpx (--workers={threads})"),
            port, None)
    log = work / "h2load.log"
    rows = []
    for title, body, rpc, requests, chunks in [
        ("unary chat", "unary", "CreateChatCompletion", args.requests, 1),
        ("stream 128 chunks", "stream", "StreamChatCompletion", args.stream_requests, 128),
    ]:
        json_body, grpc_body = bodies[body]

        def load(name, count):
            _, port, _ = proxies[name]
            if name.startswith("gateway"):
                return h2load(f"http://127.0.0.1:{port}/vllmgateway.v1.VLLMService/{rpc}", grpc_body, count,
                              connections, streams, grpc_headers, log)
            return h2load(f"http://127.0.0.1:{port}/v1/chat/completions", json_body, count, connections, streams,
                          json_headers, log)

        def round_of(name):
            process, _, metrics = proxies[name]
            threads_before, sim_before = thread_cpu(process.pid), cpu_seconds(sim.pid)
            switches_before, syscalls_before = context_switches(process.pid), socket_syscalls(process.pid)
            machine_before, h2load_before = machine_jiffies(), children_cpu_seconds()
            result = measure(name, process, metrics, lambda: {"requests": requests, **load(name, requests)})
            threads_after, machine_after = thread_cpu(process.pid), machine_jiffies()
            result["context_switches_per_call"] = (context_switches(process.pid) - switches_before) / requests
            result["syscalls_per_call"] = (socket_syscalls(process.pid) - syscalls_before) / requests
            seconds = requests / result["requests_per_second"] if result["requests_per_second"] else 0
            result["thread_ns"] = {tid: (label, ns - threads_before[tid][1] if tid in threads_before else ns)
                                   for tid, (label, ns) in threads_after.items()}
            busy, every = machine_after[0] - machine_before[0], machine_after[1] - machine_before[1]
            result["machine_busy"] = busy / every if every else None
            if seconds:
                proxy_seconds = result["cpu_us_per_call"] * requests / 1e6
                used = {"proxy": proxy_seconds / seconds, "vllm-sim": (cpu_seconds(sim.pid) - sim_before) / seconds,
                        "h2load": (children_cpu_seconds() - h2load_before) / seconds}
                # Whatever else ran on the machine meanwhile (this script, other work).
                if result["machine_busy"] is not None:
                    used["other"] = max(0.0, result["machine_busy"] * os.cpu_count() - sum(used.values()))
                result["cores_used"] = used
            return result

        # Warm up each at the measured concurrency: upstream connections open before any round.
        for name in proxies:
            load(name, max(requests // 10, connections * streams))
        rounds = {name: [] for name in proxies}
        for _ in range(args.rounds):
            for name in proxies:
                rounds[name].append(round_of(name))
        row = {"scenario": f"{title}, threads 1 vs 2", "chunks_per_call": chunks, "rounds": args.rounds,
               "connections": connections, "streams_per_connection": streams, "cores": os.cpu_count()}
        for name, results in rounds.items():
            by_rate = sorted(results, key=lambda r: r["requests_per_second"])
            chosen = {k: v for k, v in by_rate[len(by_rate) // 2].items() if k != "thread_ns"}
            chosen["failed"] = sum(r["failed"] for r in results)
            chosen["requests_per_second_rounds"] = [round(r["requests_per_second"]) for r in results]
            chosen["cpu_us_per_call_rounds"] = [round(r["cpu_us_per_call"], 1) for r in results]
            chosen["cpu_us_per_call"] = statistics.median(r["cpu_us_per_call"] for r in results)
            for key in ("context_switches_per_call", "syscalls_per_call"):
                chosen[key] = statistics.median(r[key] for r in results)
            # Each thread's CPU over all rounds, by name, the busiest first.
            total = {}
            for r in results:
                for tid, (label, ns) in r["thread_ns"].items():
                    total[tid] = (label, total.get(tid, (label, 0))[1] + ns)
            chosen["thread_cpu_ms"] = [(label, round(ns / 1e6, 1)) for label, ns in
                                       sorted(total.values(), key=lambda t: -t[1])]
            if name.startswith("gateway"):
                loops = {tid: t for tid, t in total.items() if t[0].startswith("NIO-ELT-")}
                chosen["event_loop_shares"] = busiest_share(loops, len(loops))
                everything = sum(ns for _, ns in total.values())
                chosen["outside_event_loops_share"] = \
                    1 - sum(ns for _, ns in loops.values()) / everything if everything else None
            else:
                chosen["event_loop_shares"] = busiest_share(total, int(name.split()[1]))
            row[name] = chosen
        # Which event loop serves which connections: one more unmeasured run of the 2-thread
        # gateway (half a second at least, for the sampler), sampled while it runs. Calls that
        # took their upstream connection from one shared place would leave the vLLM connections
        # on one loop.
        process, port, _ = proxies["gateway 2"]
        count = max(requests, int(row["gateway 2"]["requests_per_second"] / 2))
        row["gateway 2"]["connections_by_loop"] = sample_connections_by_loop(
            process.pid, port, sim_port, lambda: load("gateway 2", count))
        row["scaling"] = {}
        for proxy in ("gateway", "nghttpx"):
            one, two = row[f"{proxy} 1"], row[f"{proxy} 2"]
            balance, projected = projected_scaling(two["event_loop_shares"], one["cpu_us_per_call"],
                                                   two["cpu_us_per_call"])
            row["scaling"][proxy] = {
                "throughput_ratio": two["requests_per_second"] / one["requests_per_second"]
                if one["requests_per_second"] else None,
                "cpu_per_call_ratio": two["cpu_us_per_call"] / one["cpu_us_per_call"],
                "balance": balance, "projected_scaling": projected}
        rows.append(row)
    return rows


def print_threads(rows):
    print()
    first = rows[0]
    print(f"threads 1 vs 2 (issue 14): h2load -c {first['connections']} -m {first['streams_per_connection']}, "
          f"vllm-sim with 2 threads, {first['cores']} cores in all; median round of {first['rounds']} by req/s "
          "(CPU: median of the rounds; failed: all rounds); thread shares over all rounds")
    print(f"{'scenario':<24}{'path':<11}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU µs/call':>13}{'switches/call':>15}"
          f"{'syscalls/call':>15}{'thread shares':>15}{'machine':>9}{'cores: proxy/sim/h2load/other':>31}{'failed':>8}")
    for row in rows:
        title = row["scenario"].split(",")[0]
        for name in ("gateway 1", "gateway 2", "nghttpx 1", "nghttpx 2"):
            r = row[name]
            shares = "/".join(f"{s:.2f}" for s in r["event_loop_shares"])
            cores = r.get("cores_used") or {}
            used = "/".join(f"{cores.get(k, 0):.2f}" for k in ("proxy", "vllm-sim", "h2load", "other"))
            print(f"{title:<24}{name:<11}{r['requests_per_second']:>9.0f}{r['p50_ms'] or 0:>9.2f}"
                  f"{r['p99_ms'] or 0:>9.2f}{r['cpu_us_per_call']:>13.1f}{r['context_switches_per_call']:>15.2f}"
                  f"{r['syscalls_per_call']:>15.2f}{shares:>15}{(r['machine_busy'] or 0) * 100:>8.0f}%{used:>31}{r['failed']:>8}")
        for proxy, s in row["scaling"].items():
            projected = f"{s['projected_scaling']:.2f}x" if s["projected_scaling"] else "-"
            print(f"{'':<24}{proxy}: 2 threads / 1 thread req/s {s['throughput_ratio']:.2f}x; CPU per call "
                  f"{s['cpu_per_call_ratio']:.2f}x, balance {s['balance'] or 0:.2f}, projected with spare cores "
                  f"{projected}")
        outside = row["gateway 2"].get("outside_event_loops_share")
        loops = row["gateway 2"].get("connections_by_loop") or []
        print(f"{'':<24}gateway --threads 2: {(outside or 0) * 100:.1f}% of its CPU outside its event loops; "
              f"connections per event loop (gRPC in / to vLLM): "
              f"{', '.join(f'{a} / {u}' for a, u in loops) or 'none seen'}")


def threads_targets(rows):
    """Issue 14's target, as measured here and as projected for a machine with cores to spare."""
    measured = {row["scenario"].split(",")[0]: row["scaling"] for row in rows}
    detail = "; ".join(f"{title}: gateway {s['gateway']['throughput_ratio']:.2f}x, nghttpx "
                       f"{s['nghttpx']['throughput_ratio']:.2f}x" for title, s in measured.items())
    projected = "; ".join(f"{title}: gateway {s['gateway']['projected_scaling'] or 0:.2f}x, nghttpx "
                          f"{s['nghttpx']['projected_scaling'] or 0:.2f}x" for title, s in measured.items())
    failed = sum(row[name]["failed"] for row in rows for name in ("gateway 1", "gateway 2"))
    return {
        "--threads 2: unary and streaming at least 1.8x one thread's req/s (measured here)": (
            all(s["gateway"]["throughput_ratio"] >= 1.8 for s in measured.values()) and failed == 0,
            f"{detail}; {failed} failed; {os.cpu_count()} cores shared with h2load and the sim"),
        "--threads 2: at least 1.8x projected where cores are spare (balance x CPU per call)": (
            all((s["gateway"]["projected_scaling"] or 0) >= 1.8 for s in measured.values()) and failed == 0,
            projected),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--stream-requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--streams", type=int, default=16, help="concurrent streams per HTTP/2 connection")
    parser.add_argument("--concurrent-streams", type=int, default=10000)
    parser.add_argument("--concurrent-connections", type=int, default=100)
    parser.add_argument("--latency-streams", type=int, default=1000,
                        help="open streams while every chunk's delay is timed (stream-latency-probe)")
    parser.add_argument("--latency-seconds", type=float, default=5.0,
                        help="how long that load is held and measured, after a ramp of one stream's length")
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds of the unary, streaming, embeddings and threads scenarios (each path's median "
                        "is reported)")
    parser.add_argument("--threads-connections", type=int, default=8,
                        help="h2load connections of the threads 1 vs 2 rows (at least 4, to feed both threads)")
    parser.add_argument("--only", choices=["threads"],
                        help="run only these rows (threads: gateway --threads 1 vs 2 against nghttpx --workers=1 vs 2)")
    parser.add_argument("--skip-threads", action="store_true", help="leave out the threads 1 vs 2 rows")
    parser.add_argument("--output", help="where the JSON goes (default: bench-results/bench.json, with --only "
                        "threads bench-results/bench-threads.json)")
    args = parser.parse_args()
    if args.threads_connections < 4:
        parser.error("--threads-connections must be at least 4")
    if args.only == "threads" and args.skip_threads:
        parser.error("--only threads and --skip-threads leave nothing to run")
    if args.output is None:
        args.output = str(ROOT / "bench-results" / ("bench-threads.json" if args.only == "threads" else "bench.json"))

    work = Path(tempfile.mkdtemp(prefix="vllm-grpc-bench-"))
    bodies = make_bodies(work)
    sim_port, gateway_port, metrics_port, proxy_port = free_port(), free_port(), free_port(), free_port()
    processes = []

    def start(command, port, name):
        return start_process(processes, command, port, name)

    grpc_headers = ["content-type: application/grpc", "te: trailers"]
    json_headers = ["content-type: application/json"]
    results, latency, threads_rows = [], None, []
    try:
        waited, share = settle()
        print(f"machine {'settled' if share < 0.1 else 'still busy'} after {waited:.0f} s "
              f"({share:.0%} of its cores busy in the last second)", flush=True)
        print(profile_freshness(), flush=True)
        if args.only != "threads":
            start(sim_command(sim_port), sim_port, "vllm-sim")

            # The gateway and nghttpx as the rows run them: one thread or worker each, the gateway
            # with its metrics (the failed-call counts come from them).
            def gateway_command(port, metrics):
                return [str(RELEASE / "vllm-grpc-gateway"), "--listen", f"127.0.0.1:{port}", "--upstream",
                        f"http://127.0.0.1:{sim_port}", "--threads", "1", "--log-level", "error",
                        "--metrics-listen", f"127.0.0.1:{metrics}"]

            def nghttpx_command(port, streams_per_connection, backend_connections):
                return ["nghttpx", "--conf=/dev/null", f"--frontend=127.0.0.1,{port};no-tls",
                        f"--backend=127.0.0.1,{sim_port}", "--workers=1", "--log-level=ERROR",
                        "--errorlog-file=/dev/null",
                        f"--frontend-http2-max-concurrent-streams={max(streams_per_connection, 100)}",
                        f"--backend-connections-per-host={backend_connections}"]

            gateway = start(gateway_command(gateway_port, metrics_port), gateway_port, "gateway")
            proxy = start(nghttpx_command(proxy_port, args.streams, max(
                args.clients * args.streams, args.concurrent_streams, args.latency_streams)), proxy_port, "nghttpx")
            scenarios = [
                ("unary chat", "unary", "/v1/chat/completions", "CreateChatCompletion", args.requests, 1),
                ("stream 128 chunks", "stream", "/v1/chat/completions", "StreamChatCompletion", args.stream_requests, 128),
                ("embeddings 16x1024", "embeddings", "/v1/embeddings", "CreateEmbedding", args.stream_requests, 1),
            ]
            for title, body, path, rpc, requests, chunks in scenarios:
                json_body, grpc_body = bodies[body]
                log = work / "h2load.log"
                # Warm up the proxies at the measured concurrency, so that their upstream connection
                # pools are full before any round counts.
                warm_up = max(requests // 10, args.clients * args.streams)
                h2load(f"http://127.0.0.1:{gateway_port}/vllmgateway.v1.VLLMService/{rpc}", grpc_body, warm_up,
                       args.clients, args.streams, grpc_headers, log)
                if body != "embeddings":
                    h2load(f"http://127.0.0.1:{proxy_port}{path}", json_body, warm_up, args.clients, args.streams,
                           json_headers, log)
                row = {"scenario": title, "chunks_per_call": chunks, "rounds": args.rounds}
                paths = {
                    "direct": lambda: measure("direct", None, None, lambda: {
                        "requests": requests, **h2load(f"http://127.0.0.1:{sim_port}{path}", json_body, requests,
                                                       args.clients, 1, json_headers, log, h1=True)}),
                    "nghttpx": lambda: measure("nghttpx", proxy, None, lambda: {
                        "requests": requests, **h2load(f"http://127.0.0.1:{proxy_port}{path}", json_body, requests,
                                                       args.clients, args.streams, json_headers, log)}),
                    "gateway": lambda: measure("gateway", gateway, metrics_port, lambda: {
                        "requests": requests, **h2load(f"http://127.0.0.1:{gateway_port}/vllmgateway.v1.VLLMService/{rpc}",
                                                       grpc_body, requests, args.clients, args.streams, grpc_headers, log)}),
                }
                if body == "embeddings":
                    del paths["nghttpx"]
                results.append(alternate_rounds(row, paths, args.rounds))

            # TLS on both sides: the gateway (swift-nio-ssl) and nghttpx (OpenSSL) terminate it with
            # the same certificate; h2load negotiates h2 by ALPN. (Each nghttpx skips the system's
            # nghttpx.conf, whose own frontend port two of them cannot both bind.)
            key, certificate = self_signed_certificate(work)
            tls_gateway_port, tls_proxy_port = free_port(), free_port()
            tls_gateway = start([str(RELEASE / "vllm-grpc-gateway"), "--listen", f"127.0.0.1:{tls_gateway_port}",
                                 "--upstream", f"http://127.0.0.1:{sim_port}", "--threads", "1", "--log-level", "error",
                                 "--tls-certificate", str(certificate), "--tls-key", str(key)],
                                tls_gateway_port, "gateway (TLS)")
            tls_proxy = start(["nghttpx", "--conf=/dev/null", f"--frontend=127.0.0.1,{tls_proxy_port}", f"--backend=127.0.0.1,{sim_port}",
                               "--workers=1", "--log-level=ERROR", "--errorlog-file=/dev/null",
                               f"--frontend-http2-max-concurrent-streams={max(args.streams, 100)}",
                               f"--backend-connections-per-host={args.clients * args.streams}", str(key),
                               str(certificate)], tls_proxy_port, "nghttpx (TLS)")
            for title, body, rpc, requests, chunks in [
                ("unary chat TLS", "unary", "CreateChatCompletion", args.requests, 1),
                ("stream 128 chunks TLS", "stream", "StreamChatCompletion", args.stream_requests, 128),
            ]:
                json_body, grpc_body = bodies[body]
                log = work / "h2load.log"
                gateway_url = f"https://127.0.0.1:{tls_gateway_port}/vllmgateway.v1.VLLMService/{rpc}"
                proxy_url = f"https://127.0.0.1:{tls_proxy_port}/v1/chat/completions"
                warm_up = max(requests // 10, args.clients * args.streams)
                h2load(gateway_url, grpc_body, warm_up, args.clients, args.streams, grpc_headers, log)
                h2load(proxy_url, json_body, warm_up, args.clients, args.streams, json_headers, log)
                row = {"scenario": title, "chunks_per_call": chunks, "rounds": args.rounds}
                results.append(alternate_rounds(row, {
                    "nghttpx": lambda: measure("nghttpx", tls_proxy, None, lambda: {
                        "requests": requests, **h2load(proxy_url, json_body, requests, args.clients, args.streams,
                                                       json_headers, log)}),
                    "gateway": lambda: measure("gateway", tls_gateway, None, lambda: {
                        "requests": requests, **h2load(gateway_url, grpc_body, requests, args.clients, args.streams,
                                                       grpc_headers, log)}),
                }, args.rounds))

            # Issue 14's features all on (routing over 8 upstreams, a client key with limits, metrics
            # and the access log) against the unary row's gateway with none of them.
            results.append(observability_row(args, work, bodies, sim_port, start, grpc_headers))

            # The delay each path adds to every streamed chunk, under a steady load of open streams.
            latency = latency_scenario(args, work, bodies["stamped"], sim_port, proxy, proxy_port, gateway, gateway_port,
                                       metrics_port, grpc_headers, json_headers)

            # Many streams open at once, the sim pacing 20 tokens at 20 per second (about 1 s each):
            # each path started afresh for each round (see open_streams_row).
            def fresh(name):
                port = free_port()
                if name == "nghttpx":
                    process = start(nghttpx_command(port, args.concurrent_streams // args.concurrent_connections,
                                                    args.concurrent_streams), port, "nghttpx")
                    return process, f"http://127.0.0.1:{port}/v1/chat/completions", json_headers, None
                metrics = free_port()
                process = start(gateway_command(port, metrics), port, "gateway")
                return (process, f"http://127.0.0.1:{port}/vllmgateway.v1.VLLMService/StreamChatCompletion",
                        grpc_headers, metrics)

            def stop(process):
                process.terminate()
                process.wait()
                processes.remove(process)

            results.append(open_streams_row(args, work, bodies["paced"], fresh, stop))
        if not args.skip_threads:
            # Issue 14: two threads against one, the gateway and nghttpx side by side.
            threads_rows = threads_scenario(args, work, bodies, start, grpc_headers, json_headers)
    finally:
        for process in processes:
            process.terminate()
            process.wait()

    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    targets = {}
    if results:
        print(f"h2load -c {args.clients} -m {args.streams} (direct: HTTP/1.1, -m 1); one thread each; CPU = the proxy's "
              f"CPU time, user and system (of it user: the share in its own code, split by /proc's ticks); "
              f"the first three scenarios: median of {args.rounds} alternating rounds (failed: all rounds)")
        header = f"{'scenario':<24}{'path':<9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU µs/call':>13}{'of it user':>11}" \
                 f"{'µs/chunk':>10}{'RSS MiB':>9}{'failed':>8}"
        print(header)
        for row in results:
            for name in ("direct", "nghttpx", "gateway", "all off", "all on"):
                if name not in row:
                    continue
                r = row[name]
                cpu = r.get("cpu_us_per_call")
                per_chunk = cpu / row["chunks_per_call"] if cpu and row["chunks_per_call"] > 1 else None
                print(f"{row['scenario']:<24}{name:<9}{r['requests_per_second']:>9.0f}{r['p50_ms'] or 0:>9.2f}"
                      f"{r['p99_ms'] or 0:>9.2f}{cpu or 0:>13.1f}{r.get('user_us_per_call') or 0:>11.1f}"
                      f"{per_chunk or 0:>10.2f}{r.get('peak_rss_mib', 0):>9.1f}"
                      f"{r['failed']:>8}")
            if "memory_kib_per_open_stream" in row.get("gateway", {}):
                def spread(name):
                    return "/".join(f"{x:.2f}" for x in row[name]["memory_kib_per_open_stream_rounds"])

                print(f"{'':<20}memory per open stream (median of fresh processes' rounds): gateway "
                      f"{row['gateway']['memory_kib_per_open_stream']:.2f} KiB (rounds {spread('gateway')}), "
                      f"nghttpx {row['nghttpx']['memory_kib_per_open_stream']:.2f} KiB (rounds {spread('nghttpx')}); "
                      f"p99 stream time: gateway "
                      f"{row['gateway']['p99_ms']:.0f} ms, nghttpx {row['nghttpx']['p99_ms']:.0f} ms "
                      f"(ideal about 950 ms)")
                own = row["gateway"].get("own_message_delay_us") or {}
                if own.get("p99") is not None:
                    print(f"{'':<20}delay the gateway adds to each chunk (its own histograms): p50 {own['p50']:.1f} µs, "
                          f"p99 {own['p99']:.1f} µs")
            if row["scenario"].startswith("embeddings") and row["gateway"]["reply_bytes"]:
                ratio = row["direct"]["reply_bytes"] / row["gateway"]["reply_bytes"]
                print(f"{'':<20}reply on the wire: vLLM's JSON {row['direct']['reply_bytes']:.0f} bytes, the gateway's "
                      f"protobuf {row['gateway']['reply_bytes']:.0f} bytes: {ratio:.2f}x smaller")
            if "all on" in row:
                on, off = row["all on"], row["all off"]
                print(f"{'':<20}all on adds {on['cpu_us_per_call'] - off['cpu_us_per_call']:.1f} µs CPU per call "
                      f"({on['cpu_us_per_call'] / off['cpu_us_per_call']:.2f}x); rounds on "
                      f"{[round(x, 1) for x in on['cpu_us_per_call_rounds']]}, off "
                      f"{[round(x, 1) for x in off['cpu_us_per_call_rounds']]}; access log lines {row['access_log_lines']}")
                continue
            gateway = row["gateway"]
            ratios = []
            for other in ("direct", "nghttpx"):
                if other not in row or not row[other]["requests_per_second"] or not row[other]["p50_ms"]:
                    continue
                text = f"vs {other}: req/s {gateway['requests_per_second'] / row[other]['requests_per_second']:.2f}x"
                # Direct runs one request per connection at a time, so its latencies are not comparable.
                if other != "direct":
                    text += f", p50 {gateway['p50_ms'] / row[other]['p50_ms']:.2f}x, " \
                            f"p99 {gateway['p99_ms'] / row[other]['p99_ms']:.2f}x"
                if row[other].get("cpu_us_per_call"):
                    text += f", CPU per call {gateway['cpu_us_per_call'] / row[other]['cpu_us_per_call']:.2f}x"
                ratios.append(text)
            if ratios:
                print(f"{'':<20}gateway {'; '.join(ratios)}")
        print_latency(latency)
        targets = check_targets(results, latency)
    if threads_rows:
        print_threads(threads_rows)
        targets.update(threads_targets(threads_rows))
    print()
    print("targets (issues 5, 11 and 14):")
    for name, (met, detail) in targets.items():
        print(f"  {'met' if met else 'NOT MET':<8}{name}: {detail}")
    Path(args.output).write_text(json.dumps(results + ([latency] if latency else []) + threads_rows + [{"targets": {
        name: {"met": met, "detail": detail} for name, (met, detail) in targets.items()}}], indent=2))
    print(f"results: {args.output}")


if __name__ == "__main__":
    main()
