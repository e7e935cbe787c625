"""vllm-sim's token stamps, which tools/bench times streamed chunks by: with
"vllm_sim": {"stamp": true} every token is `~T` + 19 digits + `~`, the digits the sim's
CLOCK_MONOTONIC in nanoseconds when it wrote the chunk (time.monotonic_ns() reads the same clock)."""

import json
import re
import time
import urllib.request


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
    assert len(stamps) == 5
    # Paced at 50 tokens/s: each stamp about 20 ms after the one before.
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert all(10_000_000 < gap < 500_000_000 for gap in gaps), gaps


def test_without_stamp_tokens_are_words(sim):
    body = {"model": "sim-model", "messages": [{"role": "user", "content": "stamp me"}], "max_tokens": 3}
    answer = json.loads(urllib.request.urlopen(urllib.request.Request(
        f"http://{sim.address}/v1/chat/completions", data=json.dumps(body).encode(),
        headers={"content-type": "application/json"}), timeout=10).read())
    assert "~T" not in answer["choices"][0]["message"]["content"]

