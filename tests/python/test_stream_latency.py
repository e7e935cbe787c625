"""vllm-sim's token stamps, and stream-latency-probe (tools/bench) that times chunks by them: with
"vllm_sim": {"stamp": true} every token is `~T` + 19 digits + `~`, the digits the sim's
CLOCK_MONOTONIC in nanoseconds when it wrote the chunk (time.monotonic_ns() reads the same clock)."""

import json
import re
import subprocess
import time
import urllib.request

from conftest import BIN_DIR
from vllmgateway.v1 import chat_pb2

STAMP = re.compile(r"^~T(\d{19})~$")


def test_stamped_tokens_carry_the_sims_monotonic_clock(sim):
    body = {"model": "sim-model", "messages": [{"role": "user", "content": "stamp me"}], "max_tokens": 5,
            "stream": True, "vllm_sim": {"tokens_per_second": 50, "stamp": True}}
    request = urllib.request.Request(f"http://{sim.address}/v1/chat/completions", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
    sent = time.monotonic_ns()
    stamps = []
    with urllib.request.urlopen(request, timeout=10) as answer:
        for line in answer:
            received = time.monotonic_ns()
            if not line.startswith(b"data: {"):
                continue
            content = json.loads(line[6:])["choices"][0]["delta"].get("content", "")
            if content:
                match = STAMP.match(content)
                assert match, content
                stamp = int(match.group(1))
                # Written after the request went out and before this read: the same clock.
                assert sent < stamp <= received
                assert received - stamp < 1_000_000_000
                stamps.append(stamp)
    # The role chunk is stamped too (sent at once), then the five paced tokens.
    assert len(stamps) == 6
    # Paced at 50 tokens/s: each stamp about 20 ms after the one before.
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert all(10_000_000 < gap < 500_000_000 for gap in gaps), gaps


def test_without_stamp_tokens_are_words(sim):
    body = {"model": "sim-model", "messages": [{"role": "user", "content": "stamp me"}], "max_tokens": 3}
    answer = json.loads(urllib.request.urlopen(urllib.request.Request(
        f"http://{sim.address}/v1/chat/completions", data=json.dumps(body).encode(),
        headers={"content-type": "application/json"}), timeout=10).read())
    assert "~T" not in answer["choices"][0]["message"]["content"]


def run_probe(tmp_path, mode, port, body, *args):
    output = tmp_path / "probe.json"
    subprocess.run([str(BIN_DIR / "stream-latency-probe"), mode, "--port", str(port), "--body", str(body),
                    "--output", str(output), "--timeout", "30", *args], check=True, capture_output=True, timeout=60)
    return json.loads(output.read_text())


def stamped_chat(tmp_path, tokens):
    body = {"model": "sim-model", "messages": [{"role": "user", "content": "probe"}], "max_tokens": tokens,
            "stream": True, "vllm_sim": {"tokens_per_second": 100, "stamp": True}}
    path = tmp_path / "body.json"
    path.write_text(json.dumps(body))
    return path


def assert_sane(summary, streams, chunks):
    assert summary["streams"] == streams and summary["failed"] == 0
    # Each stream's stamped role chunk, then its tokens.
    assert summary["chunks"] == chunks + streams
    # Loopback on one machine: well under a second, and never negative.
    for key in ("chunk_delay_us", "first_chunk_delay_us"):
        assert 0 < summary[key]["p50"] <= summary[key]["max"] < 1_000_000
    # Time to first token runs to the stamped role chunk (counted above), so it is a round trip,
    # not a pacing interval; how long a round trip takes is the benchmark's business.
    assert 0 < summary["ttft_us"]["p50"] <= summary["ttft_us"]["max"] < 1_000_000


def test_probe_times_every_chunk_over_http1(sim, tmp_path):
    summary = run_probe(tmp_path, "http1", sim.port, stamped_chat(tmp_path, 4), "--streams", "6",
                        "--header", "content-type: application/json")
    assert_sane(summary, 6, 24)


def test_probe_keeps_the_slots_busy_for_the_duration(sim, tmp_path):
    # 3 slots, each running 4-token streams (about 60 ms) back to back for half a second.
    summary = run_probe(tmp_path, "http1", sim.port, stamped_chat(tmp_path, 4), "--streams", "3",
                        "--ramp-seconds", "0.05", "--duration-seconds", "0.5",
                        "--header", "content-type: application/json")
    assert summary["failed"] == 0 and summary["all_streams"] >= 12
    assert summary["chunks"] == 5 * summary["streams"]


def test_probe_times_grpc_streams_through_the_gateway(gateway, tmp_path):
    request = chat_pb2.ChatCompletionRequest(model="sim-model", max_tokens=4,
                                             messages=[chat_pb2.ChatMessage(role="user", text="probe")])
    request.extra_body.update({"vllm_sim": {"tokens_per_second": 100, "stamp": True}})
    message = request.SerializeToString()
    body = tmp_path / "body.grpc"
    body.write_bytes(b"\0" + len(message).to_bytes(4, "big") + message)
    summary = run_probe(tmp_path, "h2", gateway.port, body, "--grpc", "--connections", "2",
                        "--streams-per-connection", "3", "--path", "/vllmgateway.v1.VLLMService/StreamChatCompletion",
                        "--header", "content-type: application/grpc", "--header", "te: trailers")
    assert_sane(summary, 6, 24)


def test_probe_counts_a_failed_grpc_stream(gateway, tmp_path):
    request = chat_pb2.ChatCompletionRequest(model="no-such-model", max_tokens=4,
                                             messages=[chat_pb2.ChatMessage(role="user", text="probe")])
    message = request.SerializeToString()
    body = tmp_path / "body.grpc"
    body.write_bytes(b"\0" + len(message).to_bytes(4, "big") + message)
    summary = run_probe(tmp_path, "h2", gateway.port, body, "--grpc", "--streams-per-connection", "2",
                        "--path", "/vllmgateway.v1.VLLMService/StreamChatCompletion",
                        "--header", "content-type: application/grpc", "--header", "te: trailers")
    assert summary["streams"] == 2 and summary["failed"] == 2 and summary["chunks"] == 0
