"""The example clients work as written, against the gateway and vllm-sim: the README's Python
example, and the clients in examples/ (Python blocking and asyncio, Go, C++), each built the way
its README says and run for real in each of its modes."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GENERATED = ROOT / "tests" / "python" / "generated"


def test_stream_chat_example(gateway):
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "python" / "stream_chat.py"), gateway.address,
                             "Hi"], capture_output=True, text=True, timeout=60,
                            env={"PYTHONPATH": str(GENERATED)})
    assert result.returncode == 0, result.stderr
    assert "generated tokens]" in result.stdout and len(result.stdout.splitlines()[0]) > 0


class Client:
    """An example program: its command line without the arguments, and its environment."""

    def __init__(self, language, command, env=None):
        self.language = language
        self.command = command
        self.env = {**os.environ, **(env or {})}

    def run(self, address, mode, timeout=60):
        started = time.monotonic()
        result = subprocess.run(self.command + [address, mode], capture_output=True, text=True, timeout=timeout,
                                env=self.env)
        result.seconds = time.monotonic() - started
        return result


def _build(script, out_dir):
    """Runs an example's build.sh, as its README says, and returns the program it built."""
    result = subprocess.run([str(script), str(out_dir)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    program = out_dir / "chat-client"
    assert program.is_file()
    return [str(program)]


@pytest.fixture(scope="module", params=["python", "python-aio", "go", "cpp"])
def client(request, tmp_path_factory):
    language = request.param
    if language == "python":
        return Client(language, [sys.executable, str(EXAMPLES / "python" / "chat_client.py")],
                      {"PYTHONPATH": str(GENERATED)})
    if language == "python-aio":
        return Client(language, [sys.executable, str(EXAMPLES / "python" / "chat_client_aio.py")],
                      {"PYTHONPATH": str(GENERATED)})
    return Client(language, _build(EXAMPLES / language / "build.sh", tmp_path_factory.mktemp(f"build-{language}")))


def _answer(vllm, max_tokens):
    """What the simulator answers to the examples' prompt, asked for with a unary call."""
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


def test_example_streams_a_chat_answer(client, gateway, vllm):
    result = client.run(gateway.address, "stream")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == _answer(vllm, 32)
    assert lines[1] == "[usage: 13 prompt + 32 completion tokens]"
    assert lines[-1] == "status: OK"


def test_example_cancels_a_stream_half_way_and_vllm_aborts(client, gateway, sim, vllm):
    full = _answer(vllm, 100)
    before = sim.stats()
    result = client.run(gateway.address, "cancel")
    assert result.returncode == 0, result.stderr
    text, rest = result.stdout.split("\ncancelled after 10 chunks\n")
    assert 0 < len(text) < len(full) and full.startswith(text)
    assert rest.splitlines() == ["status: CANCELLED"]
    assert result.seconds < 4, "100 tokens at 20 a second take 5 s: the call was not cut short"
    after = _wait_for_aborted(sim, before["aborted"] + 1)
    assert after["aborted"] == before["aborted"] + 1, after
    assert after["completed"] == before["completed"], "the cancelled generation did not run to its end"
    assert after["in_flight"] == 0


def test_example_deadline_ends_deadline_exceeded(client, gateway, sim, vllm):
    full = _answer(vllm, 100)
    before = sim.stats()
    result = client.run(gateway.address, "deadline")
    assert result.returncode == 0, result.stderr
    *text, status = result.stdout.splitlines()
    assert status == "status: DEADLINE_EXCEEDED"
    assert full.startswith("\n".join(text)) and len("\n".join(text)) < len(full) // 2
    assert result.seconds < 4, "a 200 ms deadline on a 5 s stream"
    after = _wait_for_aborted(sim, before["aborted"] + 1)
    assert after["aborted"] == before["aborted"] + 1, "the gateway aborts the generation at the deadline"


def test_example_reads_the_error_info_of_not_found(client, gateway):
    """The direct path (one --upstream, vLLM's own 404): ErrorInfo with vLLM's error type."""
    result = client.run(gateway.address, "not-found")
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


@pytest.fixture(scope="module")
def fleet_gateway(sim, tmp_path_factory):
    """A gateway on the same simulator through a configuration file: the fleet path, where the
    gateway itself answers NOT_FOUND for a model no upstream serves."""
    from conftest import ServerProcess
    folder = tmp_path_factory.mktemp("fleet-gateway")
    config = folder / "gateway.json"
    config.write_text(json.dumps({"upstreams": [{"name": "sim", "url": f"http://{sim.address}"}]}))
    server = ServerProcess("vllm-grpc-gateway", ["--listen", "127.0.0.1:{port}", "--config", str(config),
                                                 "--log-level", "info"], folder / "gateway.log")
    import grpc
    from vllmgateway.v1 import models_pb2, service_pb2_grpc
    with grpc.insecure_channel(server.address) as channel:  # until it has read the sim's /v1/models
        stub, deadline = service_pb2_grpc.VLLMServiceStub(channel), time.monotonic() + 10
        while [m.id for m in stub.ListModels(models_pb2.ListModelsRequest(), timeout=5).data] != ["sim-model"]:
            assert time.monotonic() < deadline, "the fleet gateway did not discover the sim's model"
            time.sleep(0.05)
    yield server
    server.stop()


def test_example_reads_the_error_info_of_not_found_from_a_fleet(client, fleet_gateway):
    """The fleet path: the gateway's own ErrorInfo naming the model and the ones served."""
    result = client.run(fleet_gateway.address, "not-found")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "status: NOT_FOUND",
        "message: no upstream serves the model `no-such-model`; the models served are: sim-model",
        "error_info: reason=MODEL_NOT_FOUND domain=vllm-grpc-gateway",
        "metadata: model=no-such-model",
        "metadata: served_models=sim-model",
    ]


def test_example_exits_non_zero_when_the_call_fails(client):
    from conftest import free_port
    result = client.run(f"127.0.0.1:{free_port()}", "stream")
    assert result.returncode != 0
    assert "UNAVAILABLE" in result.stdout + result.stderr or "Unavailable" in result.stderr
