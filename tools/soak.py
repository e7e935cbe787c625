"""Soak test of the gateway: N streaming chat calls held in flight for a long time, each replaced
by a new one as it ends, with random client cancels, short deadlines and upstream faults asked of
vllm-sim. Every call's status (and, where it has one, its number of chunks) is checked against
what the gateway must answer; at the end the gateway's RSS must be back within 10% of its
baseline, no file descriptor may be left open beyond the baseline, and nothing may still be in
flight at the gateway or at the simulator.

The baseline is taken after a warm-up round of the same mix at the same concurrency, once the
gateway is idle again (its upstream connections closed by --upstream-idle-timeout): by then its
pools, allocator arenas and HTTP/2 tables have had their working size once, so what follows
measures growth across the soak, not the first fill. The end figures are taken the same way, in
the same idle state, so the two are comparable.

See `tools/soak --help`. Exits non-zero on any failure.
"""

import argparse
import asyncio
import collections
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# tools/test runs the short soak on the debug build it has just made (SOAK_BIN_DIR); by hand, release.
RELEASE = Path(os.environ.get("SOAK_BIN_DIR", ROOT / ".build" / "release"))

sys.path.insert(0, str(ROOT / "tools"))
from bench import free_port, generate_stubs, wait_for_port  # noqa: E402

# What the gateway answers for an upstream HTTP status (Sources/Gateway/UpstreamStatus.swift),
# for the statuses the soak asks the simulator for.
HTTP_STATUS_CODES = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
                     503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}

# The mix of calls: kind and weight.
KINDS = [
    ("normal", 40),        # runs to its end: OK with every token
    ("cancel", 14),        # the client cancels it midway: CANCELLED
    ("deadline", 10),      # a deadline shorter than the generation: DEADLINE_EXCEEDED
    ("http_error", 4),     # vLLM answers an error status: its mapped code
    ("stream_error", 8),   # an error event midway: its mapped code, after the chunks before it
    ("drop", 6),           # vLLM closes the connection midway: UNAVAILABLE, never OK
    ("truncate", 6),       # the response ends cleanly without [DONE]: UNAVAILABLE, never OK
    ("reset", 4),          # a TCP reset midway: UNAVAILABLE
    ("malformed_json", 2), # an event that is not JSON midway: UNAVAILABLE
    ("truncated_event", 2),  # half an event, then a clean end: UNAVAILABLE
    ("drop_before_head", 1),   # the request read, the connection closed, no answer: UNAVAILABLE
    ("reset_before_head", 1),  # a TCP reset with the request unread (the gateway sends it again once): UNAVAILABLE
    ("stall", 3),          # vLLM goes silent midway: UNAVAILABLE at --upstream-stall-timeout
    ("stall_before_head", 1),  # vLLM never answers: UNAVAILABLE at --upstream-stall-timeout
    ("stall_deadline", 4), # vLLM goes silent, the client's deadline comes first: DEADLINE_EXCEEDED
]
# The faults that cut a stream after `after` events and must end the call UNAVAILABLE.
CUT_FAULTS = ("drop", "truncate", "reset", "malformed_json", "truncated_event")


def rss_kib(pid):
    return int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1))


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def http_json(url):
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def gateway_metrics(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


class Plan:
    """One call: what it asks for and what must come of it."""

    def __init__(self, kind, rng, args, stall_timeout):
        self.kind = kind
        self.max_tokens = rng.randint(args.min_tokens, args.max_tokens)
        self.ttft_ms = rng.randint(0, 200)
        tps = args.tokens_per_second
        # Nominal length of the generation, as the simulator paces it.
        self.nominal = self.ttft_ms / 1000 + (self.max_tokens - 1) / tps
        self.sim = {"tokens_per_second": tps, "ttft_ms": self.ttft_ms}
        self.timeout = self.nominal + 30  # far beyond the nominal length: a hang shows
        self.cancel_after = None
        self.expected = "OK"
        self.chunks = None  # chunks that must arrive, if known
        self.message = None
        # `after` counts SSE events; the first carries the role, so chunks received == after.
        after = rng.randint(1, self.max_tokens)
        if kind == "cancel":
            self.cancel_after = rng.uniform(0.05, 0.5 * self.nominal)
            self.expected = "CANCELLED"
        elif kind == "deadline":
            self.timeout = rng.uniform(0.05, 0.5 * self.nominal)
            self.expected = "DEADLINE_EXCEEDED"
        elif kind == "http_error":
            status = rng.choice(sorted(HTTP_STATUS_CODES))
            self.message = f"soak http_error {status}"
            self.sim.update(fault="http_error", status=status, message=self.message)
            self.expected, self.chunks = HTTP_STATUS_CODES[status], 0
        elif kind == "stream_error":
            status = rng.choice(sorted(HTTP_STATUS_CODES))
            self.message = f"soak stream_error {status}"
            self.sim.update(fault="stream_error", status=status, message=self.message, after=after)
            self.expected, self.chunks = HTTP_STATUS_CODES[status], after
        elif kind in CUT_FAULTS:
            self.sim.update(fault=kind, after=after)
            self.expected, self.chunks = "UNAVAILABLE", after
        elif kind in ("drop_before_head", "reset_before_head"):
            self.sim.update(fault=kind)
            self.expected, self.chunks = "UNAVAILABLE", 0
        elif kind in ("stall", "stall_before_head"):
            self.sim.update(fault=kind)
            self.chunks = 0
            if kind == "stall":
                self.sim.update(after=after)
                self.chunks = after
            if stall_timeout:
                self.expected = "UNAVAILABLE"
                self.timeout = stall_timeout + self.nominal + 30
            else:  # a gateway without a stall timeout: only a deadline ends it
                self.expected = "DEADLINE_EXCEEDED"
                self.timeout = self.nominal + 2
        elif kind == "stall_deadline":
            # Silence soon after the start; the deadline comes within it, well before the stall
            # timeout (which counts from the last chunk).
            after = rng.randint(1, 8)
            self.sim.update(fault="stall", after=after)
            self.expected = "DEADLINE_EXCEEDED"
            self.timeout = self.ttft_ms / 1000 + after / tps + rng.uniform(0.3, 1.2)
            if stall_timeout:
                self.timeout = min(self.timeout, stall_timeout * 0.8)


class Soak:
    def __init__(self, args, stub_of, stall_timeout):
        from vllmgateway.v1 import chat_pb2
        self.chat_pb2 = chat_pb2
        self.args = args
        self.stub_of = stub_of
        self.stall_timeout = stall_timeout
        self.rng = random.Random(args.seed)
        self.kinds = [k for k, _ in KINDS]
        self.weights = [w for _, w in KINDS]
        self.outcomes = collections.Counter()  # (phase, kind, status) -> calls
        self.failures = []  # (phase, kind, description)
        self.slowest = 0.0

    def request(self, plan):
        request = self.chat_pb2.ChatCompletionRequest(
            model="sim-model", max_tokens=plan.max_tokens,
            messages=[self.chat_pb2.ChatMessage(role="user", text="Tell me a long story, soak.")])
        request.extra_body.update({"vllm_sim": plan.sim})
        return request

    async def one_call(self, phase, index):
        import grpc
        kind = self.rng.choices(self.kinds, self.weights)[0]
        plan = Plan(kind, self.rng, self.args, self.stall_timeout)
        stub = self.stub_of(index)
        began = time.monotonic()
        call = stub.StreamChatCompletion(self.request(plan), timeout=plan.timeout)
        cancelled_by_us = None
        timer = None
        if plan.cancel_after is not None:
            def cancel():
                nonlocal cancelled_by_us
                cancelled_by_us = call.cancel()
            timer = asyncio.get_running_loop().call_later(plan.cancel_after, cancel)
        chunks = content_chunks = 0
        finish_reasons = []
        usage_tokens = None
        details = ""
        try:
            async for chunk in call:
                chunks += 1
                for choice in chunk.choices:
                    if choice.delta.content:
                        content_chunks += 1
                    if choice.finish_reason:
                        finish_reasons.append(choice.finish_reason)
                if chunk.HasField("usage"):
                    usage_tokens = chunk.usage.completion_tokens
        except grpc.aio.AioRpcError as error:
            details = error.details() or ""
        except asyncio.CancelledError:
            if not cancelled_by_us:
                raise  # not our cancel: the soak itself is being stopped
        finally:
            if timer:
                timer.cancel()
        code = (await call.code()).name
        elapsed = time.monotonic() - began
        self.slowest = max(self.slowest, elapsed)
        self.outcomes[(phase, kind, code)] += 1

        problems = []
        if code != plan.expected:
            problems.append(f"status {code} ({details!r}), expected {plan.expected}")
        if kind == "cancel" and cancelled_by_us is False:
            problems.append("the call had ended before its cancel")
        if code == "OK":
            if content_chunks != plan.max_tokens or usage_tokens != plan.max_tokens or finish_reasons != ["length"]:
                problems.append(f"OK with {content_chunks} content chunks, usage {usage_tokens}, finish reasons "
                                f"{finish_reasons}; asked for {plan.max_tokens} tokens")
        elif plan.chunks is not None and chunks != plan.chunks and code == plan.expected:
            problems.append(f"{chunks} chunks before {code}, expected {plan.chunks}")
        if plan.message and code == plan.expected and details != plan.message:
            problems.append(f"message {details!r}, expected {plan.message!r}")
        if problems:
            self.failures.append((phase, kind, f"{'; '.join(problems)} [max_tokens {plan.max_tokens}, "
                                               f"sim {json.dumps(plan.sim)}, timeout {plan.timeout:.2f} s, "
                                               f"ran {elapsed:.2f} s]"))

    async def run(self, phase, seconds, streams, on_tick=None):
        """Keeps `streams` calls in flight for `seconds`, then waits for the last to end."""
        end = time.monotonic() + seconds
        counter = 0
        tasks = set()
        wake = asyncio.Event()

        def done(task):
            tasks.discard(task)
            wake.set()
            if not task.cancelled() and task.exception():
                self.failures.append((phase, "?", f"client error: {task.exception()!r}"))

        def launch():
            nonlocal counter
            task = asyncio.get_running_loop().create_task(self.one_call(phase, counter))
            counter += 1
            tasks.add(task)
            task.add_done_callback(done)

        # Start the first round spread over a second, not as one burst.
        ramp_began = time.monotonic()
        for index in range(streams):
            launch()
            if index % 50 == 49:
                await asyncio.sleep(max(0.0, ramp_began + (index + 1) / streams - time.monotonic()))
        next_tick = time.monotonic() + 1
        while time.monotonic() < end:
            while len(tasks) < streams:
                launch()
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), timeout=max(0.0, min(end, next_tick) - time.monotonic()))
            except asyncio.TimeoutError:
                pass
            if on_tick and time.monotonic() >= next_tick:
                on_tick(len(tasks))
                next_tick += 1
        drain_started = time.monotonic()
        while tasks:
            await asyncio.wait(set(tasks), timeout=1)
            if on_tick:
                on_tick(len(tasks))
        return counter, time.monotonic() - drain_started


def main():
    began = time.monotonic()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, help="seconds of soak after the warm-up (600; --short 30)")
    parser.add_argument("--streams", type=int, help="streaming calls kept in flight (1000; --short 200)")
    parser.add_argument("--short", action="store_true",
                        help="the CI mode: 200 streams, 30 s of soak after 10 s of warm-up")
    parser.add_argument("--warm-up", type=float, default=None, help="seconds of warm-up round (60; --short 10)")
    parser.add_argument("--connections", type=int, default=8, help="client HTTP/2 connections the calls share (8)")
    parser.add_argument("--tokens-per-second", type=float, default=20, help="the simulator's pace per stream (20)")
    parser.add_argument("--min-tokens", type=int, default=20, help="fewest tokens a call asks for (20)")
    parser.add_argument("--max-tokens", type=int, default=80, help="most tokens a call asks for (80)")
    parser.add_argument("--stall-timeout", type=float, default=3,
                        help="the gateway's --upstream-stall-timeout, if it has the flag (3)")
    parser.add_argument("--idle-timeout", type=float, default=2,
                        help="the gateway's --upstream-idle-timeout (2)")
    parser.add_argument("--rss-tolerance", type=float, default=0.10, help="allowed RSS growth (0.10)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the random mix (random)")
    args = parser.parse_args()
    if args.duration is None:
        args.duration = 30 if args.short else 600
    if args.streams is None:
        args.streams = 200 if args.short else 1000
    if args.warm_up is None:
        args.warm_up = 10 if args.short else 60
    if args.seed is None:
        args.seed = random.randrange(1 << 31)
    print(f"soak: {args.streams} streams for {args.duration:.0f} s after a {args.warm_up:.0f} s warm-up, "
          f"{args.connections} connections, {args.tokens_per_second:g} tokens/s, {args.min_tokens}-{args.max_tokens} "
          f"tokens a call, seed {args.seed}", flush=True)

    work = Path(tempfile.mkdtemp(prefix="soak-"))
    generate_stubs(work)
    import grpc
    from vllmgateway.v1 import service_pb2_grpc

    help_text = subprocess.run([str(RELEASE / "vllm-grpc-gateway"), "--help"], capture_output=True, text=True).stdout
    stall_timeout = args.stall_timeout if "--upstream-stall-timeout" in help_text else None
    sim_port, gateway_port, metrics_port = free_port(), free_port(), free_port()
    processes = []

    def start(command, port, name):
        log = open(work / f"{name}.log", "w")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        processes.append(process)
        wait_for_port(port, process, name)
        return process

    failures = []
    report = {}
    try:
        sim = start([str(RELEASE / "vllm-sim"), "--port", str(sim_port), "--threads", "1"], sim_port, "vllm-sim")
        gateway_command = [str(RELEASE / "vllm-grpc-gateway"), "--listen", f"127.0.0.1:{gateway_port}",
                           "--upstream", f"http://127.0.0.1:{sim_port}", "--log-level", "warning",
                           "--metrics-listen", f"127.0.0.1:{metrics_port}",
                           "--upstream-idle-timeout", str(args.idle_timeout)]
        if stall_timeout:
            gateway_command += ["--upstream-stall-timeout", str(stall_timeout)]
        gateway = start(gateway_command, gateway_port, "gateway")
        pid = gateway.pid
        print(f"gateway pid {pid} (stall timeout: {stall_timeout or 'none, stalls end by deadline'}), "
              f"vllm-sim pid {sim.pid}, logs in {work}", flush=True)

        samples = []  # (time, rss KiB, fds, calls in flight)
        t0 = time.monotonic()

        def sample(in_flight):
            if gateway.poll() is not None:
                raise SystemExit("the gateway died")
            samples.append((time.monotonic() - t0, rss_kib(pid), open_fds(pid), in_flight))

        async def idle(what):
            """Waits until the gateway's upstream connections have idled out: its descriptors stop
            falling, at least the idle timeout plus two seconds after the last call."""
            waited_from = time.monotonic()
            await asyncio.sleep(args.idle_timeout + 2)
            last = open_fds(pid)
            while time.monotonic() - waited_from < args.idle_timeout + 15:
                await asyncio.sleep(1)
                now = open_fds(pid)
                if now >= last:
                    break
                last = now
            return time.monotonic() - waited_from

        async def soak():
            channels = [grpc.aio.insecure_channel(f"127.0.0.1:{gateway_port}",
                                                  options=[("grpc.use_local_subchannel_pool", 1)])
                        for _ in range(args.connections)]
            stubs = [service_pb2_grpc.VLLMServiceStub(c) for c in channels]
            for channel in channels:
                await asyncio.wait_for(channel.channel_ready(), 10)
            runner = Soak(args, lambda i: stubs[i % len(stubs)], stall_timeout)
            report["start"] = {"rss_kib": rss_kib(pid), "fds": open_fds(pid)}

            print(f"warm-up: {args.streams} streams for {args.warm_up:.0f} s", flush=True)
            calls, drain = await runner.run("warm-up", args.warm_up, args.streams, sample)
            report["warm_up"] = {"calls": calls, "drain_s": drain, "peak_rss_kib": max(s[1] for s in samples)}
            waited = await idle("warm-up")
            report["baseline"] = {"rss_kib": rss_kib(pid), "fds": open_fds(pid), "idle_wait_s": waited}
            print(f"baseline after warm-up and {waited:.0f} s idle: RSS {report['baseline']['rss_kib'] / 1024:.1f} "
                  f"MiB, {report['baseline']['fds']} fds", flush=True)

            soak_from = len(samples)
            cpu_before = {name: cpu_seconds(p) for name, p in (("gateway", pid), ("vllm-sim", sim.pid),
                                                                ("client", os.getpid()))}
            progress = {"next": time.monotonic() + 30}

            def tick(in_flight):
                sample(in_flight)
                if time.monotonic() >= progress["next"]:
                    progress["next"] += 30
                    _, rss, fds, _ = samples[-1]
                    ended = sum(n for (phase, _, _), n in runner.outcomes.items() if phase == "soak")
                    print(f"  {samples[-1][0]:6.0f} s: {ended} calls ended, {in_flight} in flight, RSS "
                          f"{rss / 1024:.1f} MiB, {fds} fds, {len(runner.failures)} failures, load "
                          f"{os.getloadavg()[0]:.1f}", flush=True)

            print(f"soak: {args.streams} streams for {args.duration:.0f} s", flush=True)
            soak_began = time.monotonic()
            calls, drain = await runner.run("soak", args.duration, args.streams, tick)
            elapsed = time.monotonic() - soak_began
            report["soak"] = {"calls": calls, "drain_s": drain, "seconds": elapsed,
                              "cpu_s": {name: cpu_seconds(p) - cpu_before[name]
                                        for name, p in (("gateway", pid), ("vllm-sim", sim.pid),
                                                        ("client", os.getpid()))},
                              "peak_rss_kib": max(s[1] for s in samples[soak_from:]),
                              "peak_fds": max(s[2] for s in samples[soak_from:]),
                              "slowest_call_s": runner.slowest}
            waited = await idle("soak")
            report["end"] = {"rss_kib": rss_kib(pid), "fds": open_fds(pid), "idle_wait_s": waited}
            report["sim_stats"] = {k: v for k, v in http_json(f"http://127.0.0.1:{sim_port}/stats").items()
                                   if isinstance(v, int)}
            metrics = gateway_metrics(metrics_port)
            report["gateway_calls"] = {
                "started": int(metrics["vllm_grpc_gateway_calls_started_total"]),
                "in_flight": int(metrics["vllm_grpc_gateway_calls_in_flight"]),
                "handled": {name.split('"')[1]: int(v) for name, v in metrics.items()
                            if name.startswith("vllm_grpc_gateway_calls_handled_total") and v}}
            for channel in channels:
                await channel.close()
            return runner

        runner = asyncio.run(soak())
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
    load = os.getloadavg()

    # MARK: the report
    print()
    print("calls by kind and status (warm-up + soak):")
    statuses = sorted({code for (_, _, code) in runner.outcomes}, key=lambda code: (code != "OK", code))
    print(f"  {'kind':<16}" + "".join(f"{s:>{len(s) + 2}}" for s in statuses) + f"{'total':>8}")
    totals = collections.Counter()
    for kind in runner.kinds:
        row = collections.Counter()
        for (_, k, code), n in runner.outcomes.items():
            if k == kind:
                row[code] += n
        totals.update(row)
        print(f"  {kind:<16}" + "".join(f"{row[s] or '':>{len(s) + 2}}" for s in statuses)
              + f"{sum(row.values()):>8}")
    print(f"  {'all':<16}" + "".join(f"{totals[s]:>{len(s) + 2}}" for s in statuses) + f"{sum(totals.values()):>8}")

    failures += [f"{phase} {kind}: {what}" for phase, kind, what in runner.failures]
    base, end, soak = report["baseline"], report["end"], report["soak"]
    sim_stats, gateway_calls = report["sim_stats"], report["gateway_calls"]
    mib = lambda kib: f"{kib / 1024:.1f} MiB"
    print()
    print(f"calls: {report['warm_up']['calls']} in the warm-up, {soak['calls']} in {soak['seconds']:.0f} s of soak "
          f"({soak['calls'] / soak['seconds']:.0f}/s), slowest {soak['slowest_call_s']:.1f} s; last calls drained in "
          f"{soak['drain_s']:.1f} s")
    print(f"gateway RSS: {mib(report['start']['rss_kib'])} at start, {mib(report['warm_up']['peak_rss_kib'])} peak "
          f"in the warm-up, {mib(base['rss_kib'])} baseline (idle after warm-up), {mib(soak['peak_rss_kib'])} peak "
          f"in the soak, {mib(end['rss_kib'])} at the end (idle, {end['idle_wait_s']:.0f} s after the last call): "
          f"{100 * (end['rss_kib'] / base['rss_kib'] - 1):+.1f}% of the baseline")
    print(f"gateway fds: {report['start']['fds']} at start, {base['fds']} baseline, {soak['peak_fds']} peak, "
          f"{end['fds']} at the end")
    print(f"CPU seconds in the soak: " + ", ".join(f"{k} {v:.0f}" for k, v in soak["cpu_s"].items())
          + f"; load average at the end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print(f"gateway metrics: {gateway_calls['started']} calls started, {gateway_calls['in_flight']} in flight, "
          f"ended {json.dumps(gateway_calls['handled'])}")
    print(f"vllm-sim /stats: {json.dumps(sim_stats)}")

    if end["rss_kib"] > base["rss_kib"] * (1 + args.rss_tolerance):
        failures.append(f"RSS {mib(end['rss_kib'])} at the end is more than {100 * args.rss_tolerance:.0f}% above "
                        f"the baseline {mib(base['rss_kib'])}")
    if end["fds"] > base["fds"]:
        failures.append(f"{end['fds']} fds open at the end, {base['fds']} at the baseline: "
                        f"{end['fds'] - base['fds']} leaked")
    if sim_stats.get("in_flight") != 0:
        failures.append(f"vllm-sim still has {sim_stats.get('in_flight')} requests in flight")
    if sim_stats.get("requests") != sim_stats.get("completed", 0) + sim_stats.get("aborted", 0):
        failures.append("vllm-sim's requests are not all completed or aborted")
    if gateway_calls["in_flight"] != 0:
        failures.append(f"the gateway still counts {gateway_calls['in_flight']} calls in flight")
    if totals["OK"] > gateway_calls["handled"].get("OK", 0):
        failures.append("the client saw more OK calls than the gateway counts")
    print()
    if failures:
        print(f"SOAK FAILED: {len(failures)} failures (seed {args.seed}, {time.monotonic() - began:.0f} s)")
        for failure in failures[:40]:
            print(f"  {failure}")
        if len(failures) > 40:
            print(f"  ... and {len(failures) - 40} more")
        sys.exit(1)
    print(f"SOAK PASSED: {sum(totals.values())} calls, every status as expected; RSS and fds back to the baseline "
          f"({time.monotonic() - began:.0f} s)")


if __name__ == "__main__":
    main()
