"""CPU time a call of two or more gateway binaries, side by side in one run: the same release
vllm-sim behind each, h2load's load against each in alternating rounds, each binary's CPU from
the scheduler (schedstat), the median round reported beside the first binary's, and the median
of each round's ratio to the first binary's in that round.

tools/bench's rows compare the gateway with nghttpx and move between runs by more than most
changes (a streamed call's row moved by 5% from one run to the next, nghttpx's own as much);
callgrind counts instructions, which this machine does not turn into time at one rate (a change
that removed 10% of a streamed chunk's instructions removed 4% of its CPU time, another 6.3% and
4.7%). This measures what a hot-path change does to time, old binary beside new:

  cp .build/release/vllm-grpc-gateway /tmp/old   # before the change
  tools/bench-ab --mode stream /tmp/old .build/release/vllm-grpc-gateway

Each gateway runs as tools/bench's stream and unary rows run it (--threads 1, --metrics-listen);
`--mode features` serves unary calls with issue 14's features all on, as the bench's all-on row
does (8 upstreams, a client key with limits, the access log, metrics).
"""
import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["stream", "unary", "features"], default="stream")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, help="calls a round (default: 2,000 streams or 20,000 unary calls)")
    parser.add_argument("binaries", nargs="+", help="gateway binaries")
    args = parser.parse_args()
    requests = args.requests or (2000 if args.mode == "stream" else 20000)
    rpc = "StreamChatCompletion" if args.mode == "stream" else "CreateChatCompletion"
    chunks = 128 if args.mode == "stream" else 1
    headers = ["content-type: application/grpc", "te: trailers"]
    work = Path(tempfile.mkdtemp(prefix="bench-ab-"))
    body = bench.make_bodies(work)["stream" if args.mode == "stream" else "unary"][1]
    if args.mode == "features":
        headers.append("x-api-key: sk-bench")
    processes = []

    def start(command, port, name):
        return bench.start_process(processes, command, port, name)

    try:
        waited, share = bench.settle()
        print(f"machine {'settled' if share < 0.1 else 'still busy'} after {waited:.0f} s", flush=True)
        sim_port = bench.free_port()
        start(bench.sim_command(sim_port), sim_port, "vllm-sim")
        gateways = []
        for number, binary in enumerate(args.binaries):
            port, metrics = bench.free_port(), bench.free_port()
            if args.mode == "features":
                config = work / f"features-{number}.json"
                config.write_text(json.dumps(bench.features_config(sim_port, work / f"access-{number}.log")))
                serving = ["--config", str(config)]
            else:
                serving = ["--upstream", f"http://127.0.0.1:{sim_port}"]
            process = start([binary, "--listen", f"127.0.0.1:{port}", *serving, "--threads", "1", "--log-level",
                             "error", "--metrics-listen", f"127.0.0.1:{metrics}"], port, binary)
            gateways.append((binary, process, f"http://127.0.0.1:{port}/vllmgateway.v1.VLLMService/{rpc}"))
        for _, _, url in gateways:  # warm-up: first calls, pools
            bench.h2load(url, body, requests // 10, 16, 16, headers, work / "h2load.log")
        rounds = {binary: [] for binary in args.binaries}
        for number in range(args.rounds):
            for binary, process, url in (gateways if number % 2 == 0 else gateways[::-1]):
                before = bench.cpu_seconds(process.pid)
                result = bench.h2load(url, body, requests, 16, 16, headers, work / "h2load.log")
                if result["succeeded_http"] != requests:
                    sys.exit(f"{binary}: {result['succeeded_http']} of {requests} calls succeeded")
                rounds[binary].append((bench.cpu_seconds(process.pid) - before) * 1e6 / requests)
        first = statistics.median(rounds[args.binaries[0]])
        for binary in args.binaries:
            median = statistics.median(rounds[binary])
            per_chunk = f", {median / chunks:.3f} us a chunk" if chunks > 1 else ""
            # The host's speed drifts between rounds by more than most changes (a round's figures
            # moved from 18 to 32 us in one run); each round's ratio to the first binary's, taken
            # within seconds of it, drifts far less.
            paired = statistics.median(r / f for r, f in zip(rounds[binary], rounds[args.binaries[0]]))
            print(f"{binary}: {median:.1f} us a call{per_chunk}, {median / first:.3f}x the first, "
                  f"{paired:.3f}x round by round (rounds {', '.join(f'{r:.1f}' for r in rounds[binary])})")
    finally:
        for process in processes:
            process.terminate()


if __name__ == "__main__":
    main()
