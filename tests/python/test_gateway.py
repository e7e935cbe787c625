"""The gateway executable itself: flags, health and reflection."""

import os
import subprocess

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from conftest import BIN_DIR


def test_help_lists_every_flag():
    result = subprocess.run([str(BIN_DIR / "vllm-grpc-gateway"), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for flag in ("--listen", "--upstream", "--api-key", "--threads", "--max-concurrent-streams",
                 "--max-receive-message-size", "--max-header-list-size", "--shutdown-grace-period", "--log-level",
                 "--responses-mode", "--metrics-listen"):
        assert flag in result.stdout
    assert "VLLM_BASE_URL" in result.stdout and "VLLM_API_KEY" in result.stdout


def test_bad_listen_address_is_refused():
    result = subprocess.run([str(BIN_DIR / "vllm-grpc-gateway"), "--listen", "nowhere"], capture_output=True,
                            text=True, timeout=10)
    assert result.returncode != 0
    assert "--listen" in result.stderr


@pytest.mark.parametrize("flag,value,says", [
    # Sent as 32-bit numbers in SETTINGS: a larger one trapped at the first connection.
    ("--max-concurrent-streams", "5000000000", "--max-concurrent-streams must be from 1 to 4294967295"),
    ("--max-header-list-size", "5000000000", "--max-header-list-size must be from 1024 to 4294967295"),
    # Durations are 64-bit nanoseconds: past about 31 years, or infinite, converting them trapped.
    ("--shutdown-grace-period", "1e10", "--shutdown-grace-period must be a number of seconds"),
    ("--upstream-idle-timeout", "inf", "--upstream-idle-timeout must be positive seconds"),
    ("--upstream-stall-timeout", "1e300", "--upstream-stall-timeout must be seconds"),
])
def test_a_flag_out_of_range_is_refused_at_start(flag, value, says):
    result = subprocess.run([str(BIN_DIR / "vllm-grpc-gateway"), "--listen", "127.0.0.1:0", "--upstream",
                             "http://127.0.0.1:9", flag, value], capture_output=True, text=True, timeout=10)
    assert result.returncode != 0
    assert says in result.stderr, result.stderr


def test_gateway_serves_health_and_reflection(start_server):
    gateway = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--upstream", "http://127.0.0.1:9")
    channel = grpc.insecure_channel(gateway.address)
    health = health_pb2_grpc.HealthStub(channel)
    assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING
    services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert {"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection"} <= services
    channel.close()
    assert "url=http://127.0.0.1:9" in gateway.log()


def test_gateway_reads_upstream_from_environment(tmp_path):
    from conftest import ServerProcess
    env_before = dict(os.environ)
    os.environ["VLLM_BASE_URL"] = "http://10.1.2.3:8000"
    os.environ["VLLM_API_KEY"] = "secret"
    try:
        gateway = ServerProcess("vllm-grpc-gateway", ["--listen", "127.0.0.1:{port}"], tmp_path / "gw.log")
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    try:
        assert "url=http://10.1.2.3:8000" in gateway.log()
        assert "api-key=set" in gateway.log() and "secret" not in gateway.log()
    finally:
        gateway.stop()


def test_metrics_count_calls_by_status(start_server, sim):
    import urllib.request
    from conftest import free_port
    from vllmgateway.v1 import chat_pb2, service_pb2_grpc
    metrics_port = free_port()
    gateway = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--upstream", f"http://{sim.address}",
                           "--metrics-listen", f"127.0.0.1:{metrics_port}")
    channel = grpc.insecure_channel(gateway.address)
    vllm = service_pb2_grpc.VLLMServiceStub(channel)
    request = chat_pb2.ChatCompletionRequest(messages=[chat_pb2.ChatMessage(role="user", text="hi")], max_tokens=2)
    for _ in range(3):
        vllm.CreateChatCompletion(request, timeout=10)
    try:
        vllm.CreateChatCompletion(chat_pb2.ChatCompletionRequest(model="nope"), timeout=10)
    except grpc.RpcError:
        pass
    channel.close()
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert lines["vllm_grpc_gateway_calls_started_total"] == "4"
    assert lines['vllm_grpc_gateway_calls_handled_total{grpc_code="OK"}'] == "3"
    assert lines['vllm_grpc_gateway_calls_handled_total{grpc_code="NOT_FOUND"}'] == "1"
    assert lines["vllm_grpc_gateway_calls_in_flight"] == "0"


def test_metrics_time_what_the_gateway_adds(start_server, sim):
    """The latency histograms: request forward delay, per-message delay and the time to first byte
    the gateway adds, each observed once per call (and per chunk), small, and cumulative."""
    import urllib.request
    from conftest import free_port
    from vllmgateway.v1 import chat_pb2, service_pb2_grpc
    metrics_port = free_port()
    gateway = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--upstream", f"http://{sim.address}",
                           "--metrics-listen", f"127.0.0.1:{metrics_port}")
    channel = grpc.insecure_channel(gateway.address)
    vllm = service_pb2_grpc.VLLMServiceStub(channel)
    request = chat_pb2.ChatCompletionRequest(messages=[chat_pb2.ChatMessage(role="user", text="hi")], max_tokens=3)
    vllm.CreateChatCompletion(request, timeout=10)
    request.extra_body.update({"vllm_sim": {"tokens_per_second": 200}})
    chunks = list(vllm.StreamChatCompletion(request, timeout=10))
    channel.close()
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    prefix = "vllm_grpc_gateway_"
    assert lines[prefix + "request_forward_delay_seconds_count"] == "2"
    assert lines[prefix + "first_message_added_delay_seconds_count"] == "2"
    # One observation per write of a call's messages: paced 5 ms apart, chunks mostly go out one
    # by one (a stalled machine may let two share a write), plus the unary reply.
    assert len(chunks) // 2 < int(lines[prefix + "message_delay_seconds_count"]) - 1 <= len(chunks)
    for name in ("request_forward_delay", "message_delay", "first_message_added_delay"):
        buckets = [(float(key.split('le="')[1].rstrip('"}')), int(value)) for key, value in lines.items()
                   if key.startswith(f"{prefix}{name}_seconds_bucket")]
        counts = [count for _, count in buckets]
        assert counts == sorted(counts) and counts[-1] == int(lines[f"{prefix}{name}_seconds_count"])
        # On loopback the gateway's own share is well under 100 ms.
        assert float(lines[f"{prefix}{name}_seconds_sum"]) < 0.1 * counts[-1]


def serve_a_call_started_with(sim, check=lambda process: None, **popen):
    """Starts the gateway with `popen`'s arguments (its standard streams), has it serve a unary
    chat call, asserts it still runs, and runs `check` on the process before killing it."""
    from conftest import free_port
    from vllmgateway.v1 import chat_pb2, service_pb2_grpc
    port = free_port()
    process = subprocess.Popen([str(BIN_DIR / "vllm-grpc-gateway"), "--listen", f"127.0.0.1:{port}", "--upstream",
                                f"http://{sim.address}", "--log-level", "debug"], **popen)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=15)
            stub = service_pb2_grpc.VLLMServiceStub(channel)
            request = chat_pb2.ChatCompletionRequest(model="sim-model", max_tokens=3,
                                                     messages=[chat_pb2.ChatMessage(role="user", text="hi")])
            assert stub.CreateChatCompletion(request, timeout=5).usage.completion_tokens == 3
        assert process.poll() is None
        check(process)
    finally:
        process.kill()
        process.wait()


def test_closed_standard_descriptors_are_held_by_dev_null_not_by_sockets(sim):
    # Started with descriptors 0, 1 and 2 closed (`<&- >&- 2>&-`, or a supervisor that closes
    # them): the kernel gives new files the lowest free number, so the event loop's descriptors
    # and sockets took them and log lines went into them. They hold /dev/null now.
    def close_standard_descriptors():
        for descriptor in (0, 1, 2):
            os.close(descriptor)

    def held_by_dev_null(process):
        held = [os.readlink(f"/proc/{process.pid}/fd/{descriptor}") for descriptor in (0, 1, 2)]
        assert held == ["/dev/null"] * 3

    serve_a_call_started_with(sim, held_by_dev_null, preexec_fn=close_standard_descriptors)


def test_a_standard_error_nobody_reads_costs_log_lines_not_the_gateway(sim):
    # Standard output and error a pipe whose reader is gone (a log collector that died): the
    # first log line raised SIGPIPE, which ended the process before it listened.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        serve_a_call_started_with(sim, stdout=write_end, stderr=write_end)
    finally:
        os.close(write_end)
