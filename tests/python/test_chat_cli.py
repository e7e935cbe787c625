"""`vllm-grpc-gateway chat`: a newcomer's first call, streamed to the terminal over a real gRPC
connection (grpc-swift-2's client) through the gateway to vllm-sim."""

import json
import subprocess

from conftest import BIN_DIR
from vllmgateway.v1 import chat_pb2


def chat(*args, timeout=30):
    return subprocess.run([str(BIN_DIR / "vllm-grpc-gateway"), "chat", *args], capture_output=True, text=True,
                          timeout=timeout)


def streamed_text(vllm, max_tokens, messages):
    request = chat_pb2.ChatCompletionRequest(model="sim-model", max_tokens=max_tokens, messages=[
        chat_pb2.ChatMessage(role=role, text=text) for role, text in messages])
    return "".join(choice.delta.content for chunk in vllm.StreamChatCompletion(request, timeout=10)
                   for choice in chunk.choices)


def test_a_question_streams_its_answer_with_the_first_model(gateway, sim, vllm):
    result = chat("--target", gateway.address, "--max-tokens", "6", "--system", "Answer briefly.", "Why is the sky blue?")
    assert result.returncode == 0, result.stderr
    assert "models: sim-model; asking sim-model" in result.stderr
    # The sim answers the same question the same way: the whole answer reached the terminal.
    expected = streamed_text(vllm, 6, [("system", "Answer briefly."), ("user", "Why is the sky blue?")])
    assert result.stdout == expected + "\n" and len(expected) > 6
    sent = sim.stats()["last_request"]
    assert sent["model"] == "sim-model" and sent["max_tokens"] == 6 and sent["stream"] is True
    assert sent["messages"] == [{"role": "system", "content": "Answer briefly."},
                                {"role": "user", "content": "Why is the sky blue?"}]


def test_without_a_question_it_lists_the_models(gateway):
    result = chat("--target", gateway.address)
    assert (result.returncode, result.stdout) == (0, "sim-model\n"), result.stderr


def test_errors_are_the_gateways_status_and_message(gateway, start_server, sim, tmp_path):
    result = chat("--target", gateway.address, "--model", "no-such-model", "hi")
    assert result.returncode == 1
    assert result.stderr.startswith("NOT_FOUND: ") and "no-such-model" in result.stderr
    config = tmp_path / "keys.json"
    config.write_text(json.dumps({"upstreams": [{"url": f"http://{sim.address}"}],
                                  "auth": {"keys": [{"id": "cli", "key": "sk-cli-test"}]}}))
    keyed = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--config", str(config))
    refused = chat("--target", keyed.address, "--model", "sim-model", "hi")
    assert refused.returncode == 1 and refused.stderr.startswith("UNAUTHENTICATED: "), refused.stderr
    allowed = chat("--target", keyed.address, "--model", "sim-model", "--key", "sk-cli-test", "--max-tokens", "2", "hi")
    assert allowed.returncode == 0 and allowed.stdout.strip(), allowed.stderr


def test_the_readme_buf_curl_line_streams_the_same_answer(gateway):
    import re
    import shlex
    import shutil
    import sys
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = re.search(r"```sh\n(buf curl .*?)\n```", readme, re.S).group(1).replace("\\\n", " ")
    command = shlex.split(block.replace("localhost:50051", gateway.address))
    # buf comes with the test venv (buf-bin), next to its python.
    command[0] = shutil.which("buf") or str(Path(sys.executable).parent / "buf")
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    chunks = [json.loads(chunk) for chunk in re.findall(r"^\{.*?^\}", result.stdout, re.S | re.M)]
    tokens = [c["choices"][0]["delta"]["content"] for c in chunks
              if c.get("choices") and c["choices"][0]["delta"].get("content")]
    assert len(tokens) == chunks[-1]["usage"]["completionTokens"] == 64


def test_a_closed_standard_output_is_an_error_not_a_crash(gateway):
    # Standard output closed (`>&-`): the answer cannot be shown. The command says so and exits 1,
    # as a tool does, instead of trapping with a backtrace.
    import os
    result = subprocess.run([str(BIN_DIR / "vllm-grpc-gateway"), "chat", "--target", gateway.address,
                             "--model", "sim-model", "--max-tokens", "3", "hi"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=30,
                            preexec_fn=lambda: os.close(1))
    assert result.returncode == 1, result.stderr
    assert "standard output" in result.stderr and "Fatal error" not in result.stderr, result.stderr
