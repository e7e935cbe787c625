"""The access log: one JSON line per call, whatever its end (OK, an upstream error, a refused key,
a client cancel), with method, model, key, upstream, status, tokens, duration, time to first token
and trace id, and never the prompt, the answer or a key."""

import hashlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from datetime import datetime, timezone

import grpc
import pytest

from conftest import BIN_DIR
from vllmgateway.v1 import chat_pb2, models_pb2, service_pb2_grpc

SECRET_PROMPT = "the launch code is 8128"
TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def chat(max_tokens=5, sim=None, text=SECRET_PROMPT):
    request = chat_pb2.ChatCompletionRequest(model="sim-model", max_tokens=max_tokens,
                                             messages=[chat_pb2.ChatMessage(role="user", text=text)])
    if sim:
        request.extra_body.update({"vllm_sim": sim})
    return request


def lines(path, count, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text() if path.exists() else ""
        entries = [json.loads(line) for line in text.splitlines() if line]
        if len(entries) >= count or time.monotonic() > deadline:
            return entries, text
        time.sleep(0.05)


def test_one_line_per_call_with_what_happened(sim, start_server, tmp_path):
    log = tmp_path / "access.jsonl"
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps({"upstreams": [{"name": "sim-1", "url": f"http://{sim.address}"}],
                                  "access_log": str(log),
                                  "auth": {"keys": [{"id": "team-a", "key": "sk-access-log-test"}]}}))
    gateway = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--config", str(config))
    key = [("authorization", "Bearer sk-access-log-test"), ("traceparent", TRACE)]
    with grpc.insecure_channel(gateway.address) as channel:
        stub = service_pb2_grpc.VLLMServiceStub(channel)
        reply = stub.CreateChatCompletion(chat(), metadata=key, timeout=5)
        chunks = list(stub.StreamChatCompletion(chat(max_tokens=3), metadata=key, timeout=5))
        with pytest.raises(grpc.RpcError):
            stub.CreateChatCompletion(chat(sim={"fault": "http_error", "status": 503}), metadata=key, timeout=5)
        with pytest.raises(grpc.RpcError):
            stub.CreateChatCompletion(chat(), metadata=[("authorization", "Bearer wrong")], timeout=5)
        opened = time.time()
        stream = stub.StreamChatCompletion(chat(max_tokens=100, sim={"tokens_per_second": 20}), metadata=key,
                                           timeout=10)
        next(stream)
        first_chunk = time.time()
        time.sleep(0.3)  # so that the call's end is well after its start
        stream.cancel()
        stub.ListModels(models_pb2.ListModelsRequest(), metadata=key, timeout=5)
    entries, text = lines(log, 6)
    assert len(entries) == 6, text
    by_order = {(e["method"].rsplit("/", 1)[1], e["status"]): e for e in entries}
    unary = by_order[("CreateChatCompletion", "OK")]
    assert unary["model"] == "sim-model" and unary["key"] == "team-a" and unary["upstream"] == "sim-1"
    assert unary["prompt_tokens"] == reply.usage.prompt_tokens and unary["completion_tokens"] == 5
    assert unary["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert unary["duration_ms"] >= unary["ttft_ms"] > 0
    assert unary["time"].endswith("Z") and "T" in unary["time"]
    stream_entry = by_order[("StreamChatCompletion", "OK")]
    assert stream_entry["completion_tokens"] == chunks[-1].usage.completion_tokens == 3
    assert by_order[("CreateChatCompletion", "UNAVAILABLE")]["upstream"] == "sim-1"
    refused = by_order[("CreateChatCompletion", "UNAUTHENTICATED")]
    assert "key" not in refused and refused["model"] == "" and "upstream" not in refused
    cancelled = by_order[("StreamChatCompletion", "CANCELLED")]
    assert cancelled["ttft_ms"] > 0
    # "time" is when the call started (to the millisecond, rounded down), not when it ended.
    started = datetime.strptime(cancelled["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
    assert opened - 0.002 <= started <= first_chunk, (opened, cancelled["time"], first_chunk)
    assert ("ListModels", "OK") in by_order
    # Nothing of the conversation and no key reaches the log.
    assert SECRET_PROMPT not in text and "sk-access-log-test" not in text and "wrong" not in text


def test_a_log_that_cannot_be_written_costs_lines_not_the_gateway(sim, start_server, tmp_path):
    # /dev/full refuses every write (ENOSPC), as a full disk or a closed pipe would.
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps({"upstreams": [{"name": "sim-1", "url": f"http://{sim.address}"}],
                                  "access_log": "/dev/full"}))
    gateway = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--config", str(config))
    with grpc.insecure_channel(gateway.address) as channel:
        stub = service_pb2_grpc.VLLMServiceStub(channel)
        for _ in range(3):
            assert stub.CreateChatCompletion(chat(), timeout=5).usage.completion_tokens == 5
            time.sleep(0.25)  # past the log's 100 ms flush, so each batch meets the failing write
        assert stub.CreateChatCompletion(chat(), timeout=5).usage.completion_tokens == 5
    assert gateway.process.poll() is None
    assert gateway.wait_for_log("access log cannot be written"), gateway.log()
    assert gateway.log().count("access log cannot be written") == 1  # said once, not every 100 ms


def test_a_fifo_takes_the_log(sim, start_server, tmp_path):
    # A log shipper's named pipe cannot seek: the log appends, it does not seek to an end.
    fifo = tmp_path / "access.fifo"
    os.mkfifo(fifo)
    received = []

    def read():
        with open(fifo, "rb") as pipe:  # blocks until the gateway opens the other end
            for line in pipe:
                received.append(json.loads(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    gateway = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--upstream",
                           f"http://{sim.address}", "--access-log", str(fifo))
    with grpc.insecure_channel(gateway.address) as channel:
        stub = service_pb2_grpc.VLLMServiceStub(channel)
        stub.CreateChatCompletion(chat(), timeout=5)
    deadline = time.monotonic() + 5
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [(e["method"].rsplit("/", 1)[1], e["status"]) for e in received] == [("CreateChatCompletion", "OK")]
    assert gateway.process.poll() is None


def test_a_log_that_cannot_be_opened_stops_the_start_with_why(tmp_path):
    result = subprocess.run([str(BIN_DIR / "vllm-grpc-gateway"),
                             "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:9",
                             "--access-log", str(tmp_path / "no-such-dir" / "access.log")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "cannot open the access log" in result.stderr and "No such file or directory" in result.stderr


def gateway_logging_to_a_stalled_fifo(sim, start_server, tmp_path, *args):
    """A gateway whose access log is a FIFO, and the FIFO's read end, which nobody reads yet.
    Each end's open waits for the other, so the reader opens on a thread of its own."""
    fifo = tmp_path / "access.fifo"
    os.mkfifo(fifo)
    held = []
    opener = threading.Thread(target=lambda: held.append(open(fifo, "rb")), daemon=True)
    opener.start()
    gateway = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--upstream",
                           f"http://{sim.address}", "--access-log", str(fifo), *args)
    opener.join(timeout=5)
    return gateway, held[0]


def unknown_long_model(length):
    """A request for a model nobody serves, whose name makes its access log line `length` long,
    and the channel options that let it be sent."""
    request = chat_pb2.ChatCompletionRequest(model="m" * length, max_tokens=1,
                                             messages=[chat_pb2.ChatMessage(role="user", text="hi")])
    return request, [("grpc.max_send_message_length", 8 << 20)]


def test_a_stalled_reader_bounds_the_backlog_and_the_dropped_lines_are_counted(sim, start_server, tmp_path):
    # A FIFO whose reader reads nothing: the log's write blocks while every call still ends in
    # a line, and clients choose how long a line is (its model name). The backlog stops at
    # 64 MiB; later lines are dropped, said once at the first and counted once writes go on.
    gateway, pipe = gateway_logging_to_a_stalled_fifo(sim, start_server, tmp_path)
    request, options = unknown_long_model(1 << 20)
    long_model = request.model
    with grpc.insecure_channel(gateway.address, options=options) as channel:
        stub = service_pb2_grpc.VLLMServiceStub(channel)
        for _ in range(90):
            with pytest.raises(grpc.RpcError) as refused:
                stub.CreateChatCompletion(request, timeout=10)
            assert refused.value.code() == grpc.StatusCode.NOT_FOUND
        assert gateway.wait_for_log("access log writes are not keeping up")
        # The reader reads again: the kept lines arrive whole, the dropped ones are counted, and
        # a line written after them arrives too.
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(json.loads(line) for line in pipe), daemon=True)
        reader.start()
        # Once the backlog is taken to be written (the count is said then), lines are kept again.
        assert gateway.wait_for_log("lines dropped while its writes were behind", timeout=30)
        assert stub.CreateChatCompletion(chat(), timeout=5).usage.completion_tokens == 5
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(line["model"] == "sim-model" for line in lines):
            time.sleep(0.05)
        dropped = re.search(r"lines=(\d+).*lines dropped while its writes were behind", gateway.log())
        assert dropped, gateway.log()[-2000:]
        kept = [line for line in lines if line["model"] == long_model]
        assert len(kept) + int(dropped.group(1)) == 90 and len(kept) >= 60
        assert [line["model"] for line in lines[len(kept):]] == ["sim-model"]
    assert gateway.log().count("access log writes are not keeping up") == 1


def test_a_stalled_reader_does_not_hold_the_gateway_at_shutdown(sim, start_server, tmp_path):
    # The reader stops reading, so the log's write blocks in the kernel. At SIGTERM the pending
    # lines get a bounded wait to be written; then the gateway exits and says what it left.
    gateway, pipe = gateway_logging_to_a_stalled_fifo(sim, start_server, tmp_path, "--shutdown-grace-period", "1")
    request, options = unknown_long_model(1 << 18)
    with grpc.insecure_channel(gateway.address, options=options) as channel:
        stub = service_pb2_grpc.VLLMServiceStub(channel)
        # A quarter of a megabyte a line, against a 64 KiB pipe: the first write blocks.
        for _ in range(4):
            with pytest.raises(grpc.RpcError):
                stub.CreateChatCompletion(request, timeout=10)
    time.sleep(0.5)
    started = time.monotonic()
    gateway.signal(signal.SIGTERM)
    try:
        gateway.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail("the gateway did not exit while its access log's reader stalled:\n" + gateway.log()[-2000:])
    assert time.monotonic() - started < 10
    assert gateway.process.returncode == 0, gateway.log()[-2000:]
    assert "access log not written out at shutdown" in gateway.log()
    pipe.close()


def gateway_with_one_call_logged(sim, start_server, log):
    """A gateway with flags only (no configuration file) logging to `log`, after one call of 2
    completion tokens whose line has been written."""
    gateway = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--upstream",
                           f"http://{sim.address}", "--access-log", str(log))
    with grpc.insecure_channel(gateway.address) as channel:
        service_pb2_grpc.VLLMServiceStub(channel).CreateChatCompletion(chat(max_tokens=2), timeout=5)
    entries, text = lines(log, 1)
    assert [entry["completion_tokens"] for entry in entries] == [2], text
    return gateway


def test_sighup_reopens_the_log_for_logrotate(sim, start_server, tmp_path):
    # logrotate's default `create` mode renames the file and makes a new one, then signals the
    # gateway (postrotate): later lines go to the new file, earlier ones stay in the renamed one.
    # The gateway here has no configuration file: SIGHUP ended such a gateway before.
    log = tmp_path / "access.log"
    gateway = gateway_with_one_call_logged(sim, start_server, log)
    rotated = tmp_path / "access.log.1"
    log.rename(rotated)
    gateway.signal(signal.SIGHUP)
    assert gateway.wait_for_log("access log reopened")
    with grpc.insecure_channel(gateway.address) as channel:
        service_pb2_grpc.VLLMServiceStub(channel).CreateChatCompletion(chat(max_tokens=3), timeout=5)
    after, _ = lines(log, 1)
    assert [line["completion_tokens"] for line in after] == [3]
    assert [json.loads(line)["completion_tokens"] for line in rotated.read_text().splitlines()] == [2]
    gateway.assert_alive()
    assert "no configuration file to read again" in gateway.log()


def context_switches(pid):
    """Every thread's context switches so far (each wake-up of a sleeping thread is one)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/status") as status:
                total += sum(int(line.split()[1]) for line in status if "ctxt_switches:" in line)
        except FileNotFoundError:
            continue  # a thread that ended while it was read
    return total


def test_an_idle_log_wakes_no_thread_and_still_writes_the_next_line(sim, start_server, tmp_path):
    # The log's write out was a timer every 100 ms for the life of the process: an idle gateway
    # woke two threads about forty times a second. Now the first line after a write out asks
    # for the next one.
    log = tmp_path / "access.log"
    gateway = gateway_with_one_call_logged(sim, start_server, log)
    time.sleep(0.5)  # the write out, and the closed connection, settle
    before = context_switches(gateway.process.pid)
    time.sleep(2)
    woken = context_switches(gateway.process.pid) - before
    assert woken < 20, f"{woken} context switches in 2 s of idling (a 100 ms timer makes about 80)"
    with grpc.insecure_channel(gateway.address) as channel:
        service_pb2_grpc.VLLMServiceStub(channel).CreateChatCompletion(chat(max_tokens=3), timeout=5)
    entries, text = lines(log, 2)
    assert [entry["completion_tokens"] for entry in entries] == [2, 3], text
    gateway.assert_alive()
