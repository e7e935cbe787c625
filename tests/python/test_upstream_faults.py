"""Upstream faults, from vllm-sim: every call ends with the status and message its fault calls
for, several faults at once under load, an upstream restarted while calls are in flight, a
refused connection, a silent vLLM ended by the stall timeout, and the keep-alive race. No
truncated answer is ever reported OK, and vllm-sim's /stats account for every request exactly:
what was re-sent, what was never processed, and nothing in flight at the end."""

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from conftest import ServerProcess, Simulator, free_port
from hostile import report, rss_kib
from vllmgateway.v1 import chat_pb2, service_pb2_grpc

CLOSED_EARLY = "vLLM closed the connection before the response ended"
ENDED_EARLY = "vLLM's event stream ended before it was complete"
STALLED = "vLLM sent nothing for 1 s while a response was due; the request was abandoned " \
          "(the gateway's --upstream-stall-timeout)"


def chat(max_tokens=6, sim=None, tokens_per_second=200):
    request = chat_pb2.ChatCompletionRequest(model="sim-model", max_tokens=max_tokens,
                                             messages=[chat_pb2.ChatMessage(role="user", text="fault please")])
    request.extra_body.update({"vllm_sim": {"tokens_per_second": tokens_per_second, **(sim or {})}})
    return request


@pytest.fixture(scope="module")
def fault_sim(tmp_path_factory):
    server = Simulator("vllm-sim", ["--port", "{port}"], tmp_path_factory.mktemp("fault-sim") / "sim.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fault_gateway(fault_sim, tmp_path_factory):
    """One event loop, so a call after another reuses its upstream connection, and a stall
    timeout of 1 s."""
    server = ServerProcess("vllm-grpc-gateway", [
        "--listen", "127.0.0.1:{port}", "--upstream", f"http://{fault_sim.address}", "--threads", "1",
        "--upstream-stall-timeout", "1", "--log-level", "info"], tmp_path_factory.mktemp("fault-gw") / "gw.log")
    yield server
    server.stop()


@pytest.fixture
def stub(fault_gateway, fault_sim):
    fault_sim.reset()
    channel = grpc.insecure_channel(fault_gateway.address)
    yield service_pb2_grpc.VLLMServiceStub(channel)
    channel.close()
    fault_gateway.assert_alive()


def settled_stats(sim, timeout=5.0):
    """/stats once nothing is in flight; every request counted must have ended exactly once."""
    deadline = time.monotonic() + timeout
    while True:
        stats = sim.stats()
        if stats["in_flight"] == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert stats["in_flight"] == 0, stats
    assert stats["completed"] + stats["aborted"] == stats["requests"], stats
    return stats


def stream_outcome(stub, request, timeout=10):
    chunks = []
    try:
        for chunk in stub.StreamChatCompletion(request, timeout=timeout):
            chunks.append(chunk)
    except grpc.RpcError as error:
        return chunks, error.code(), error.details()
    return chunks, grpc.StatusCode.OK, ""


def unary_outcome(stub, request, timeout=10):
    try:
        reply = stub.CreateChatCompletion(request, timeout=timeout)
    except grpc.RpcError as error:
        return None, error.code(), error.details()
    return reply, grpc.StatusCode.OK, ""


def warm_connection(stub):
    """A normal call first, so the next one goes out on a kept-alive (reused) connection."""
    chunks, code, _ = stream_outcome(stub, chat(max_tokens=2))
    assert code == grpc.StatusCode.OK and chunks[-1].usage.completion_tokens == 2


# MARK: one fault at a time, each on a reused connection


STREAM_FAULTS = [
    # (fault, chunks the client gets first, status, message, sim: requests / completed / aborted / never processed)
    ({"fault": "reset", "after": 2}, 2, grpc.StatusCode.UNAVAILABLE, CLOSED_EARLY, (1, 1, 0, 0)),
    ({"fault": "drop", "after": 3}, 3, grpc.StatusCode.UNAVAILABLE, CLOSED_EARLY, (1, 1, 0, 0)),
    # Read and then closed: it may have reached vLLM, so it is not sent again.
    ({"fault": "drop_before_head"}, 0, grpc.StatusCode.UNAVAILABLE, CLOSED_EARLY, (1, 1, 0, 0)),
    # Reset with the request unread: sent again once on a new connection, where it is reset again.
    ({"fault": "reset_before_head"}, 0, grpc.StatusCode.UNAVAILABLE, CLOSED_EARLY, (0, 0, 0, 2)),
    ({"fault": "stall_before_head"}, 0, grpc.StatusCode.UNAVAILABLE, STALLED, (1, 0, 1, 0)),
    ({"fault": "stall", "after": 2}, 2, grpc.StatusCode.UNAVAILABLE, STALLED, (1, 0, 1, 0)),
    # The gateway ends the call at the broken event and closes the request before vLLM's [DONE].
    ({"fault": "malformed_json", "after": 2}, 2, grpc.StatusCode.UNAVAILABLE, "vLLM sent an event that is not valid JSON",
     (1, 0, 1, 0)),
    ({"fault": "truncated_event", "after": 2}, 2, grpc.StatusCode.UNAVAILABLE, ENDED_EARLY, (1, 1, 0, 0)),
    ({"fault": "truncate", "after": 2}, 2, grpc.StatusCode.UNAVAILABLE, ENDED_EARLY, (1, 1, 0, 0)),
    ({"fault": "stream_error", "after": 2, "status": 500, "message": "engine died"}, 2, grpc.StatusCode.INTERNAL,
     "engine died", (1, 0, 1, 0)),
]


@pytest.mark.parametrize("fault,chunks_first,code,message,counts", STREAM_FAULTS,
                         ids=[f[0]["fault"] for f in STREAM_FAULTS])
def test_streaming_fault_ends_the_call_with_its_status(stub, fault_sim, fault, chunks_first, code, message, counts):
    warm_connection(stub)
    fault_sim.reset()
    started = time.monotonic()
    chunks, got, details = stream_outcome(stub, chat(max_tokens=8, sim=fault))
    elapsed = time.monotonic() - started
    assert (len(chunks), got) == (chunks_first, code), details
    assert message in details
    if message == STALLED:
        assert 0.9 < elapsed < 3, elapsed
    stats = settled_stats(fault_sim)
    assert (stats["requests"], stats["completed"], stats["aborted"], stats["closed_unprocessed"]) == counts, stats


UNARY_FAULTS = [
    ({"fault": "drop_before_head"}, grpc.StatusCode.UNAVAILABLE, CLOSED_EARLY, (1, 1, 0, 0)),
    ({"fault": "reset_before_head"}, grpc.StatusCode.UNAVAILABLE, CLOSED_EARLY, (0, 0, 0, 2)),
    ({"fault": "stall_before_head"}, grpc.StatusCode.UNAVAILABLE, STALLED, (1, 0, 1, 0)),
    ({"fault": "stall"}, grpc.StatusCode.UNAVAILABLE, STALLED, (1, 0, 1, 0)),
    ({"fault": "reset"}, grpc.StatusCode.UNAVAILABLE, CLOSED_EARLY, (1, 1, 0, 0)),
    ({"fault": "malformed_json"}, grpc.StatusCode.UNAVAILABLE, "vLLM's reply to /v1/chat/completions is not valid JSON", (1, 1, 0, 0)),
]


@pytest.mark.parametrize("fault,code,message,counts", UNARY_FAULTS, ids=[f[0]["fault"] for f in UNARY_FAULTS])
def test_unary_fault_ends_the_call_with_its_status(stub, fault_sim, fault, code, message, counts):
    warm_connection(stub)
    fault_sim.reset()
    reply, got, details = unary_outcome(stub, chat(max_tokens=8, sim=fault))
    assert got == code, details
    assert message in details
    stats = settled_stats(fault_sim)
    assert (stats["requests"], stats["completed"], stats["aborted"], stats["closed_unprocessed"]) == counts, stats


def test_a_kept_alive_connection_closed_as_the_request_goes_out_is_retried_once(stub, fault_sim):
    """vLLM closes what it sees as an idle connection as the next request is written on it: that
    request was never read, so it goes again, once, on a new connection, and the client sees
    nothing of it."""
    chunks, code, _ = stream_outcome(stub, chat(max_tokens=3, sim={"fault": "close_next"}))
    assert code == grpc.StatusCode.OK
    chunks, code, details = stream_outcome(stub, chat(max_tokens=5))
    assert code == grpc.StatusCode.OK, details
    assert chunks[-1].usage.completion_tokens == 5
    stats = settled_stats(fault_sim)
    assert (stats["requests"], stats["completed"], stats["closed_unprocessed"]) == (2, 2, 1), stats


def test_a_request_is_never_sent_a_third_time(stub, fault_sim):
    """The retry is once: its fresh connection reset as well ends the call."""
    warm_connection(stub)
    fault_sim.reset()
    _, code, details = stream_outcome(stub, chat(sim={"fault": "reset_before_head"}))
    assert code == grpc.StatusCode.UNAVAILABLE
    assert settled_stats(fault_sim)["closed_unprocessed"] == 2


def test_a_fresh_connection_is_never_retried(fault_sim, start_server):
    """With every upstream connection new, nothing is sent twice, even a request that was reset
    unread: a server that resets fresh connections is broken, not closing an idle one."""
    gateway = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--upstream",
                           f"http://{fault_sim.address}", "--upstream-idle-connections", "0")
    fault_sim.reset()
    with grpc.insecure_channel(gateway.address) as channel:
        stub = service_pb2_grpc.VLLMServiceStub(channel)
        warm_connection(stub)
        _, code, _ = stream_outcome(stub, chat(sim={"fault": "reset_before_head"}))
    assert code == grpc.StatusCode.UNAVAILABLE
    stats = settled_stats(fault_sim)
    assert (stats["requests"], stats["closed_unprocessed"]) == (1, 1), stats


def test_the_deadline_ends_a_stall_before_the_stall_timeout(stub, fault_sim):
    _, code, _ = stream_outcome(stub, chat(sim={"fault": "stall_before_head"}), timeout=0.3)
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert settled_stats(fault_sim)["aborted"] == 1


def test_a_slow_reader_is_not_a_stalled_upstream(stub, fault_sim):
    """The stall timeout counts vLLM's silence only: a client that holds a stream back for
    longer than it (the gateway stops reading vLLM meanwhile) still gets everything."""
    stream = stub.StreamChatCompletion(chat(max_tokens=400, tokens_per_second=0), timeout=20)
    first = next(stream)
    time.sleep(2.5)
    rest = list(stream)
    assert first.choices[0].delta.role == "assistant"
    assert rest[-1].usage.completion_tokens == 400
    assert settled_stats(fault_sim)["aborted"] == 0


# MARK: refused, restarted


def test_a_refused_connection_is_unavailable_at_once(start_server):
    gateway = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--upstream",
                           f"http://127.0.0.1:{free_port()}")
    with grpc.insecure_channel(gateway.address) as channel:
        stub = service_pb2_grpc.VLLMServiceStub(channel)
        started = time.monotonic()
        _, code, details = stream_outcome(stub, chat())
        assert time.monotonic() - started < 2
    assert code == grpc.StatusCode.UNAVAILABLE and "cannot reach vLLM" in details
    gateway.assert_alive()


def test_an_upstream_restarted_mid_flight_recovers_without_a_gateway_restart(start_server, tmp_path):
    port = free_port()
    sim = Simulator("vllm-sim", ["--port", "{port}"], tmp_path / "sim-1.log", port=port)
    gateway = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--upstream", f"http://{sim.address}")
    channel = grpc.insecure_channel(gateway.address)
    stub = service_pb2_grpc.VLLMServiceStub(channel)
    try:
        outcomes = []
        ready = threading.Semaphore(0)

        def long_stream():
            chunks = []
            try:
                for chunk in stub.StreamChatCompletion(chat(max_tokens=1000, tokens_per_second=20), timeout=30):
                    chunks.append(chunk)
                    if len(chunks) == 2:
                        ready.release()
                outcomes.append((len(chunks), grpc.StatusCode.OK, ""))
            except grpc.RpcError as error:
                outcomes.append((len(chunks), error.code(), error.details()))

        threads = [threading.Thread(target=long_stream) for _ in range(20)]
        for thread in threads:
            thread.start()
        for _ in threads:
            assert ready.acquire(timeout=10)
        sim.process.send_signal(signal.SIGKILL)
        sim.process.wait()
        for thread in threads:
            thread.join(timeout=10)
        assert len(outcomes) == 20
        for chunks, code, details in outcomes:
            assert chunks >= 2 and code == grpc.StatusCode.UNAVAILABLE and details == CLOSED_EARLY, outcomes

        # While it is down: refused at once.
        _, code, details = stream_outcome(stub, chat())
        assert code == grpc.StatusCode.UNAVAILABLE and "cannot reach vLLM" in details

        restarted = Simulator("vllm-sim", ["--port", "{port}"], tmp_path / "sim-2.log", port=port)
        try:
            for _ in range(10):
                chunks, code, details = stream_outcome(stub, chat(max_tokens=4))
                assert code == grpc.StatusCode.OK, details
                assert chunks[-1].usage.completion_tokens == 4
            assert settled_stats(restarted)["requests"] == 10
        finally:
            restarted.stop()
        gateway.assert_alive()
    finally:
        channel.close()
        sim.stop()


# MARK: everything at once


LOAD_MIX = [
    # (fault, calls, expected status, the sim's fate for each: completed, aborted, either (the gateway
    # closes the request at an error or broken event, which may come just before vLLM's own end),
    # or None: never processed)
    (None, 120, grpc.StatusCode.OK, "completed"),
    ({"fault": "reset", "after": 3}, 20, grpc.StatusCode.UNAVAILABLE, "completed"),
    ({"fault": "drop", "after": 2}, 20, grpc.StatusCode.UNAVAILABLE, "completed"),
    ({"fault": "drop_before_head"}, 20, grpc.StatusCode.UNAVAILABLE, "completed"),
    ({"fault": "reset_before_head"}, 20, grpc.StatusCode.UNAVAILABLE, None),
    ({"fault": "stall_before_head"}, 10, grpc.StatusCode.UNAVAILABLE, "aborted"),
    ({"fault": "stall", "after": 2}, 10, grpc.StatusCode.UNAVAILABLE, "aborted"),
    ({"fault": "malformed_json", "after": 2}, 20, grpc.StatusCode.UNAVAILABLE, "either"),
    ({"fault": "truncated_event", "after": 2}, 20, grpc.StatusCode.UNAVAILABLE, "completed"),
    ({"fault": "truncate", "after": 4}, 20, grpc.StatusCode.UNAVAILABLE, "completed"),
    ({"fault": "stream_error", "after": 1, "status": 503}, 20, grpc.StatusCode.UNAVAILABLE, "either"),
    ({"fault": "http_error", "status": 429}, 20, grpc.StatusCode.RESOURCE_EXHAUSTED, "completed"),
]


def test_many_faults_at_once_under_load(stub, fault_sim, fault_gateway):
    calls = [(fault, code) for fault, count, code, _ in LOAD_MIX for _ in range(count)]
    calls = calls[::2] + calls[1::2]  # interleaved, so faults and normal calls share connections
    rss_before = rss_kib(fault_gateway.process.pid)

    def run(call):
        fault, expected = call
        started = time.monotonic()
        chunks, code, details = stream_outcome(stub, chat(max_tokens=12, tokens_per_second=100, sim=fault))
        return fault, expected, chunks, code, details, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=64) as pool:
        results = list(pool.map(run, calls))
    latencies = []
    for fault, expected, chunks, code, details, elapsed in results:
        assert code == expected, (fault, code, details)
        if fault is None:
            # A complete answer: every token, the finish reason, and the usage last.
            assert chunks[-1].usage.completion_tokens == 12
            assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
            latencies.append(elapsed)
    stats = settled_stats(fault_sim, timeout=10)
    reached = sum(count for fault, count, _, fate in LOAD_MIX if fate)
    assert stats["requests"] == reached, stats
    aborted = sum(count for _, count, _, fate in LOAD_MIX if fate == "aborted")
    either = sum(count for _, count, _, fate in LOAD_MIX if fate == "either")
    assert aborted <= stats["aborted"] <= aborted + either, stats
    resets = sum(count for fault, count, _, fate in LOAD_MIX if fate is None)
    assert resets <= stats["closed_unprocessed"] <= 2 * resets, stats
    latencies.sort()
    report("upstream faults: 12 kinds at once, 64 concurrent, 320 calls",
           "every call ended with its fault's status; normal calls complete", fault_gateway.process.pid, rss_before,
           None, normal_calls_p99_ms=round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1))
