"""Drives an instrumented gateway (tools/profile-gateway builds it) through the loads tools/bench
measures, so that the profile it writes is where the gateway spends its time: unary chat calls,
streamed chats and embeddings, each served three ways: one upstream with metrics (the bench's
unary and streaming rows), issue 14's features all on (8 upstreams routed by prefix, a client
key with limits, the access log), and TLS. Each gateway is stopped with SIGTERM, and writes its
profile as it exits (LLVM_PROFILE_FILE).

  tools/profile_gateway.py INSTRUMENTED_GATEWAY RAW_PROFILE_DIRECTORY
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

# Calls of each kind a setup; the counts only need to be large beside start-up's.
LOADS = [("CreateChatCompletion", "unary", 20000), ("StreamChatCompletion", "stream", 600),
         ("CreateEmbedding", "embeddings", 300)]


def main():
    gateway, raw = sys.argv[1], Path(sys.argv[2])
    work = Path(tempfile.mkdtemp(prefix="profile-gateway-"))
    bodies = bench.make_bodies(work)
    processes = []
    try:
        sim_port = bench.free_port()
        bench.start_process(processes, bench.sim_command(sim_port), sim_port, "vllm-sim")
        key, certificate = bench.self_signed_certificate(work)
        features = work / "features.json"
        features.write_text(json.dumps(bench.features_config(sim_port, work / "access.log")))
        grpc = ["content-type: application/grpc", "te: trailers"]
        setups = [
            ("one upstream", ["--upstream", f"http://127.0.0.1:{sim_port}"], "http", grpc),
            ("features on", ["--config", str(features)], "http", grpc + ["x-api-key: sk-bench"]),
            ("TLS", ["--upstream", f"http://127.0.0.1:{sim_port}", "--tls-certificate", str(certificate),
                     "--tls-key", str(key)], "https", grpc),
        ]
        environment = dict(os.environ, LLVM_PROFILE_FILE=str(raw / "gateway-%p.profraw"))
        for name, serving, scheme, headers in setups:
            port, metrics = bench.free_port(), bench.free_port()
            process = bench.start_process(
                processes, [gateway, "--listen", f"127.0.0.1:{port}", *serving, "--threads", "1", "--log-level",
                            "error", "--metrics-listen", f"127.0.0.1:{metrics}"], port, name, environment)
            for rpc, body, calls in LOADS:
                url = f"{scheme}://127.0.0.1:{port}/vllmgateway.v1.VLLMService/{rpc}"
                result = bench.h2load(url, bodies[body][1], calls, 16, 16, headers, work / "h2load.log")
                if result["succeeded_http"] != calls:
                    sys.exit(f"{name}, {rpc}: {result['succeeded_http']} of {calls} calls succeeded")
                print(f"{name}: {calls} {rpc} calls", flush=True)
            subprocess.run(["curl", "-sf", "-o", "/dev/null", f"http://127.0.0.1:{metrics}/metrics"], check=True)
            process.send_signal(signal.SIGTERM)
            if process.wait(timeout=60) != 0:
                sys.exit(f"{name}: the gateway exited with {process.returncode}")
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait()
    written = sorted(raw.glob("gateway-*.profraw"))
    if len(written) != len(setups):
        sys.exit(f"expected {len(setups)} profiles in {raw}, found {len(written)}")


if __name__ == "__main__":
    main()
