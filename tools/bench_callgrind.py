"""Instructions per streamed chunk and per unary call of gateway binaries, counted by callgrind:
figures that machine noise does not move, for changes too small for tools/bench's timings.

Each binary (a copy stripped with `strip -g`: valgrind 3.19 cannot read Swift's DWARF) runs under
callgrind in front of a release vllm-sim, twice: with few and with more requests from h2load
(-c 1 -m 4, or -m N with `--concurrent N`). The difference divided by the extra requests (or their
chunks) is the cost of one, without start-up and shutdown. With four streams in flight, how the
event loop batches reads and writes varies from run to run and moves a unary call's count by up
to ~1,000-2,000; `--concurrent 1` serves each call alone, and two runs agree within ~200 (the
features' cost is best read that way). Valgrind needs a shim for sigsuspend (it reads the signal mask
NIO's threads pass from memory it considers unaddressable); it is compiled here.

  tools/bench-callgrind [--mode stream|unary|both] [--metrics] [--features] [--nghttpx] [--concurrent N] [BINARY ...]

With no binary, the release build of this checkout. `--features` counts issue 14's features all on, as `tools/bench`'s all-on row
serves them (8 upstreams routed by prefix, a client key with limits, the access log and metrics),
and the plain gateway (one --upstream) beside it: unary calls, or streamed chunks with `--mode stream`.
`--nghttpx` also counts nghttpx relaying the same requests as JSON to the same sim (one process,
--single-process): the instructions a proxy that only relays bytes spends on the same work.
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from bench import RELEASE, features_config, free_port, generate_stubs, wait_for_port  # noqa: E402

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <string.h>
int sigsuspend(const sigset_t *mask) {
  static int (*real)(const sigset_t *) = 0;
  if (!real) real = dlsym(RTLD_NEXT, "sigsuspend");
  sigset_t copy;
  memcpy(&copy, mask, sizeof copy);
  return real(&copy);
}
"""


def grpc_body(work, stream):
    from vllmgateway.v1 import chat_pb2, common_pb2
    message = [chat_pb2.ChatMessage(role="user", text="Tell me a story about a fox.")]
    if stream:
        request = chat_pb2.ChatCompletionRequest(model="sim-model", messages=message, max_tokens=128,
                                                 stream_options=common_pb2.StreamOptions(include_usage=True))
    else:
        request = chat_pb2.ChatCompletionRequest(model="sim-model", messages=message, max_tokens=16)
    data = request.SerializeToString()
    path = work / ("stream.grpc" if stream else "unary.grpc")
    path.write_bytes(b"\0" + len(data).to_bytes(4, "big") + data)
    return path


# h2load's concurrent streams on its one connection (--concurrent).
CONCURRENT = 4


def run_load(url, body, requests, headers, through):
    """h2load's `requests` requests (-c 1 -m CONCURRENT), every one of which must succeed."""
    command = ["h2load", "-n", str(requests), "-c", "1", "-m", str(CONCURRENT), "-d", str(body)]
    for header in headers:
        command += ["-H", header]
    result = subprocess.run(command + [url], capture_output=True, text=True).stdout
    succeeded = re.search(r"(\d+) succeeded", result)
    if not succeeded or int(succeeded.group(1)) != requests:
        sys.exit(f"h2load{through}: not every request succeeded:\n{result}")


def program_total(out):
    """All the instructions a callgrind output counted."""
    summary = subprocess.run(["callgrind_annotate", str(out)], capture_output=True, text=True).stdout
    return int(re.search(r"([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", summary).group(1).replace(",", ""))


def per_unit(stream, instructions_for):
    """The cost of one unary call or streamed chunk: `instructions_for(requests)` with few and with
    more requests, the difference over the extra calls (or their chunks)."""
    few, many = (20, 60) if stream else (500, 2500)
    units = (many - few) * (128 if stream else 1)
    low = instructions_for(few)
    return (instructions_for(many) - low) / units


def json_body(work, stream):
    """The same request as `grpc_body`, as the JSON that nghttpx relays to the sim."""
    body = {"model": "sim-model", "messages": [{"role": "user", "content": "Tell me a story about a fox."}],
            "max_tokens": 128 if stream else 16}
    if stream:
        body.update({"stream": True, "stream_options": {"include_usage": True}})
    path = work / ("stream.json" if stream else "unary.json")
    path.write_text(json.dumps(body))
    return path


def nghttpx_instructions(work, sim_port, body, requests, keep=None):
    """nghttpx (one process, no worker fork) relaying the same load as JSON: what a proxy that only
    relays bytes executes, counted the same way."""
    port = free_port()
    out = keep or work / f"callgrind.nghttpx.{port}"
    proxy = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "nghttpx", "--conf=/dev/null",
         f"--frontend=127.0.0.1,{port};no-tls", f"--backend=127.0.0.1,{sim_port}", "--workers=1",
         "--single-process", "--log-level=ERROR", "--errorlog-file=/dev/null",
         "--frontend-http2-max-concurrent-streams=100", "--backend-connections-per-host=256"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proxy, "nghttpx under callgrind")
        run_load(f"http://127.0.0.1:{port}/v1/chat/completions", body, requests, ["content-type: application/json"],
                 " through nghttpx")
    finally:
        # SIGTERM: nghttpx stops at once and callgrind writes its counts.
        proxy.terminate()
        proxy.wait()
    return program_total(out)


def total_instructions(binary, shim, work, sim_port, body, rpc, requests, config, keep=None, metrics=False):
    port = free_port()
    out = keep or work / f"callgrind.{port}"
    command = ["valgrind", "--tool=callgrind", "--dump-instr=yes", f"--callgrind-out-file={out}", str(binary),
               "--listen", f"127.0.0.1:{port}", "--threads", "1", "--log-level", "error"]
    command += ["--config", str(config["path"])] if config else ["--upstream", f"http://127.0.0.1:{sim_port}"]
    if metrics or (config and config["metrics"]):
        command += ["--metrics-listen", f"127.0.0.1:{free_port()}"]
    gateway = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               # Fixed hash seeds: with random ones, start-up's dictionary lookups
                               # cost differently in each run, which the two runs' difference kept
                               # as noise (about 300 instructions a chunk).
                               env={"LD_PRELOAD": str(shim), "PATH": "/usr/bin:/bin",
                                    "SWIFT_DETERMINISTIC_HASHING": "1"})
    try:
        # Under valgrind the gateway takes seconds to start.
        wait_for_port(port, gateway, "the gateway under callgrind")
        run_load(f"http://127.0.0.1:{port}/vllmgateway.v1.VLLMService/{rpc}", body, requests,
                 ["content-type: application/grpc", "te: trailers", "x-api-key: sk-bench"], "")
    finally:
        gateway.terminate()
        gateway.wait()
    return program_total(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binaries", nargs="*", help="gateway binaries (default: this checkout's release build)")
    parser.add_argument("--mode", choices=["stream", "unary", "both"], default="both")
    parser.add_argument("--metrics", action="store_true",
                        help="serve with --metrics-listen, as tools/bench's unary and streaming rows run the gateway "
                        "(their failed-call counts come from its metrics)")
    parser.add_argument("--features", action="store_true", help="unary with routing over 8 upstreams, a key with limits, metrics and the access log, and without")
    parser.add_argument("--concurrent", type=int, default=4,
                        help="h2load's streams in flight (default 4); 1 serves each call alone, so how the event loop "
                             "batches reads and writes moves the counts less")
    parser.add_argument("--nghttpx", action="store_true",
                        help="also count nghttpx relaying the same load as JSON, for the gateway's ratio to it")
    parser.add_argument("--keep", type=Path, help="keep the callgrind outputs in this directory, to profile the "
                        "difference (callgrind.<binary>.<mode>[.<config>].<requests>)")
    args = parser.parse_args()
    global CONCURRENT
    CONCURRENT = args.concurrent
    binaries = [Path(b) for b in args.binaries] or [RELEASE / "vllm-grpc-gateway"]
    for tool in ["valgrind", "callgrind_annotate", "h2load", "clang"]:
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed (apt-get install valgrind; tools/install-deps brings h2load, Swift clang)")
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        (work / "shim.c").write_text(SHIM)
        shim = work / "shim.so"
        subprocess.run(["clang", "-shared", "-fPIC", "-O2", "-o", str(shim), str(work / "shim.c"), "-ldl"], check=True)
        generate_stubs(work)
        sim_port = free_port()
        sim = subprocess.Popen([str(RELEASE / "vllm-sim"), "--port", str(sim_port), "--threads", "1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(sim_port, sim, "vllm-sim")
            configs = [("", None)]
            if args.features:
                # Off: the unary row's gateway (one --upstream). On: tools/bench's features_config,
                # 8 upstreams routed by prefix, a key with limits, the access log, and metrics.
                # Health checks an hour apart: every 2 s they read /health and /metrics of all 8
                # (~8 exchanges a second), work that follows the clock, not the calls, and which
                # the longer of the two runs under valgrind would charge to its extra calls.
                path = work / "features-on.json"
                path.write_text(json.dumps(features_config(sim_port, work / "access.log", check_interval_seconds=3600)))
                configs = [("features off", None), ("features on", {"path": path, "metrics": True})]
            # With --features, unary calls unless --mode stream asks for streamed chunks.
            if args.mode == "both":
                modes = ["unary"] if args.features else ["stream", "unary"]
            else:
                modes = [args.mode]
            def kept(name):
                """Where the callgrind output of `name` (its request count appended) is kept, if asked."""
                if not args.keep:
                    return lambda requests: None
                args.keep.mkdir(parents=True, exist_ok=True)
                return lambda requests: args.keep / f"callgrind.{name}.{requests}"

            for binary in binaries:
                stripped = work / f"gateway-{binaries.index(binary)}"
                shutil.copy(binary, stripped)
                subprocess.run(["strip", "-g", str(stripped)], check=True)
                for mode in modes:
                    stream = mode == "stream"
                    body = grpc_body(work, stream)
                    rpc = "StreamChatCompletion" if stream else "CreateChatCompletion"
                    for name, config in configs:
                        label = f".{name.replace(' ', '-')}" if name else ""
                        keep = kept(f"{binaries.index(binary)}.{mode}{label}")
                        cost = per_unit(stream, lambda requests: total_instructions(
                            stripped, shim, work, sim_port, body, rpc, requests, config, keep(requests), args.metrics))
                        print(f"{binary}: {cost:,.0f} instructions per "
                              f"{'streamed chunk' if stream else 'unary call'}{' (' + name + ')' if name else ''}",
                              flush=True)
            if args.nghttpx:
                if not shutil.which("nghttpx"):
                    sys.exit("nghttpx is needed (apt-get install nghttp2-proxy)")
                for mode in modes:
                    stream = mode == "stream"
                    body = json_body(work, stream)
                    keep = kept(f"nghttpx.{mode}")
                    cost = per_unit(stream, lambda requests: nghttpx_instructions(
                        work, sim_port, body, requests, keep(requests)))
                    print(f"nghttpx: {cost:,.0f} instructions per {'streamed chunk' if stream else 'unary call'}",
                          flush=True)
        finally:
            sim.terminate()


if __name__ == "__main__":
    main()
