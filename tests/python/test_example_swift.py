"""The Swift example client (examples/swift, grpc-swift-2 in a package of its own) works as written:
built with `swift build` as its README says, and run against the gateway and vllm-sim in each of
its modes. Its committed stubs are what generate-stubs.sh makes from proto/ today."""

import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "examples" / "swift"

# The package's first build takes minutes (about 3 on two idle cores, more on busy ones): the
# build's own 900 s limit, not the suite's 300 s per test, is what bounds it.
pytestmark = pytest.mark.timeout(1200)


@pytest.fixture(scope="module")
def chat_client():
    """Builds the example package (in its own .build; the first build takes minutes) and returns
    the path of its chat-client."""
    started = time.monotonic()
    result = subprocess.run(["swift", "build"], cwd=PACKAGE, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"swift build failed:\n{result.stdout[-5000:]}\n{result.stderr[-5000:]}"
    print(f"\nexamples/swift: swift build took {time.monotonic() - started:.0f} s")
    bin_path = subprocess.run(["swift", "build", "--show-bin-path"], cwd=PACKAGE, capture_output=True, text=True,
                              timeout=120, check=True).stdout.strip()
    program = Path(bin_path) / "chat-client"
    assert program.is_file()
    return program


def run(program, address, mode, timeout=60):
    started = time.monotonic()
    result = subprocess.run([str(program), address, mode], capture_output=True, text=True, timeout=timeout)
    result.seconds = time.monotonic() - started
    return result


def _answer(vllm, max_tokens):
    """What the simulator answers to the example's prompt, asked for with a unary call."""
    from vllmgateway.v1 import chat_pb2
    request = chat_pb2.ChatCompletionRequest(model="sim-model", max_tokens=max_tokens,
                                             messages=[chat_pb2.ChatMessage(role="user", text="Tell me about HTTP/2")])
    return vllm.CreateChatCompletion(request, timeout=30).choices[0].message.content


def _wait_for_aborted(sim, count, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = sim.stats()
        if stats["aborted"] >= count:
            return stats
        time.sleep(0.05)
    return sim.stats()


def test_swift_example_streams_a_chat_answer(chat_client, gateway, vllm):
    result = run(chat_client, gateway.address, "stream")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [_answer(vllm, 32), "[usage: 13 prompt + 32 completion tokens]",
                                          "status: OK"]


def test_swift_example_cancels_a_stream_half_way_and_vllm_aborts(chat_client, gateway, sim, vllm):
    full = _answer(vllm, 100)
    before = sim.stats()
    result = run(chat_client, gateway.address, "cancel")
    assert result.returncode == 0, result.stderr
    text, rest = result.stdout.split("\ncancelled after 10 chunks\n")
    assert 0 < len(text) < len(full) and full.startswith(text)
    assert rest == ""
    assert result.seconds < 4, "100 tokens at 20 a second take 5 s: the call was not cut short"
    after = _wait_for_aborted(sim, before["aborted"] + 1)
    assert after["aborted"] == before["aborted"] + 1, after
    assert after["completed"] == before["completed"], "the cancelled generation did not run to its end"
    assert after["in_flight"] == 0


def test_swift_example_deadline_ends_deadline_exceeded(chat_client, gateway, sim, vllm):
    full = _answer(vllm, 100)
    before = sim.stats()
    result = run(chat_client, gateway.address, "deadline")
    assert result.returncode == 0, result.stderr
    *text, status = result.stdout.splitlines()
    assert status == "status: DEADLINE_EXCEEDED"
    assert full.startswith("\n".join(text)) and len("\n".join(text)) < len(full) // 2
    assert result.seconds < 4, "a 200 ms deadline on a 5 s stream"
    after = _wait_for_aborted(sim, before["aborted"] + 1)
    assert after["aborted"] == before["aborted"] + 1, "the gateway aborts the generation at the deadline"
    assert after["completed"] == before["completed"]


def test_swift_example_reads_the_error_info_of_not_found(chat_client, gateway):
    """One --upstream: vLLM's (the sim's) 404 becomes NOT_FOUND with an ErrorInfo of vLLM's error."""
    result = run(chat_client, gateway.address, "not-found")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "status: NOT_FOUND",
        "message: The model `no-such-model` does not exist. Valid aliases: sim-model.",
        "error_info: reason=NOT_FOUND_ERROR domain=vllm",
        "metadata: code=404",
        "metadata: http_status=404",
        "metadata: param=model",
        "metadata: type=NotFoundError",
    ]


def test_swift_example_exits_non_zero_when_the_call_fails(chat_client):
    from conftest import free_port
    result = run(chat_client, f"127.0.0.1:{free_port()}", "stream")
    assert result.returncode == 1
    assert "unavailable" in result.stderr, result.stderr


def test_swift_example_stubs_are_generated_from_the_protos(chat_client, tmp_path):
    """generate-stubs.sh (plugins built from the package's own dependencies) writes exactly the
    committed stubs: after a change to proto/, rerun it and commit its output."""
    result = subprocess.run([str(PACKAGE / "generate-stubs.sh"), str(tmp_path)], capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    committed = PACKAGE / "Sources" / "ChatClient" / "Generated"
    names = sorted(p.name for p in committed.iterdir())
    assert names == sorted(p.name for p in tmp_path.iterdir())
    stale = [name for name in names if (committed / name).read_bytes() != (tmp_path / name).read_bytes()]
    assert not stale, f"stale stubs, run examples/swift/generate-stubs.sh: {stale}"
