"""Hostile HTTP/2 clients against the gateway with vllm-sim behind it: each attack ends the way
ServerConfiguration promises, the gateway keeps serving a well-behaved client on another
connection meanwhile, and a row of what happened goes to .build/hostile-report.jsonl."""

import resource
import socket
import struct
import time

import grpc
import pytest

from conftest import free_port, http_json
from hostile import (ENHANCE_YOUR_CALM, PREFACE, STREAM_CHAT, TIME_ALLOWANCE, RawConnection, WellBehavedClient, chat_request,
                     frame, grpc_message, metrics, open_descriptors, report, rss_kib, settings_frame, start_gateway,
                     window_update)
from vllmgateway.v1 import service_pb2_grpc


def request_headers_block(path=STREAM_CHAT, extra=()):
    """A HEADERS block encoded without HPACK indexing (literal, never indexed), so tests can
    build frames by hand."""
    def literal(name, value):
        name, value = name.encode(), value.encode()
        return b"\x10" + bytes([len(name)]) + name + bytes([len(value)]) + value
    headers = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
               ("content-type", "application/grpc"), ("te", "trailers")] + list(extra)
    return b"".join(literal(name, value) for name, value in headers)


def open_stream(stream_id, message, extra=()):
    """HEADERS then one DATA frame ending the stream: a whole streaming call."""
    return (frame(0x1, 0x4, stream_id, request_headers_block(extra=extra))
            + frame(0x0, 0x1, stream_id, grpc_message(message)))


def unary_ok(address):
    channel = grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
    try:
        stub = service_pb2_grpc.VLLMServiceStub(channel)
        return len(list(stub.StreamChatCompletion(chat_request(max_tokens=4), timeout=10))) > 0
    finally:
        channel.close()


# MARK: descriptors, silent and slow connections


def test_idle_sockets_beyond_1024_descriptors_do_not_lock_out_clients(start_server, sim):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard < 4096:
        pytest.fail(f"this machine's hard open-file limit is {hard}; the test needs 4096")
    # The gateway starts with systemd's default soft limit, 1024, and must raise it itself.
    gateway = start_gateway(start_server, sim, preexec_fn=lambda: resource.setrlimit(
        resource.RLIMIT_NOFILE, (1024, hard)))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4096), hard))
    rss_before = rss_kib(gateway.process.pid)
    sockets = []
    try:
        with WellBehavedClient(gateway.address) as bystander:
            for _ in range(1100):
                sockets.append(socket.create_connection(("127.0.0.1", gateway.port), timeout=10))
            time.sleep(0.5)
            assert unary_ok(gateway.address)
            assert open_descriptors(gateway.process.pid) > 1100
        assert not bystander.failures, bystander.failures[:3]
        report("1,100 idle TCP connections, soft open-file limit 1024", "new clients served; limit raised",
               gateway.process.pid, rss_before, bystander)
    finally:
        for s in sockets:
            s.close()
    gateway.assert_alive()


def test_connections_beyond_the_limit_are_closed_at_once(start_server, sim):
    gateway = start_gateway(start_server, sim, "--max-connections", "50")
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    opened = []
    try:
        # One at a time, each answered (its SETTINGS, once it has said it speaks HTTP/2: the server
        # also serves HTTP/1.1, so it waits for a client's first bytes) or closed before the next:
        # the connection that checked the gateway was listening has closed by then too, so 50 are
        # served and exactly one, the 51st, is closed at once.
        answered = 0
        for _ in range(51):
            s = socket.create_connection(("127.0.0.1", gateway.port), timeout=5)
            opened.append(s)
            try:
                s.sendall(preface)
                answered += s.recv(9) != b""
            except (BrokenPipeError, ConnectionResetError):
                pass
        assert answered == 50
        assert gateway.wait_for_log("connection limit reached")
    finally:
        for s in opened:
            s.close()
    time.sleep(0.3)
    assert unary_ok(gateway.address)


@pytest.mark.parametrize("opening", ["nothing", "preface only", "half a frame header", "headers at 1 byte per 0.1 s"])
def test_silent_and_slow_connections_are_closed(start_server, sim, opening):
    gateway = start_gateway(start_server, sim, "--handshake-timeout", "1", "--request-headers-timeout", "1")
    rss_before = rss_kib(gateway.process.pid)
    with WellBehavedClient(gateway.address) as bystander:
        connections = []
        for _ in range(100):
            if opening == "headers at 1 byte per 0.1 s":
                connection = RawConnection(gateway.port)
            else:
                connection = RawConnection(gateway.port, handshake=False)
                if opening == "preface only":
                    connection.send(PREFACE)
                elif opening == "half a frame header":
                    connection.send(PREFACE + settings_frame() + settings_frame(ack=True)[:4])
            connections.append(connection)
        if opening == "headers at 1 byte per 0.1 s":
            block = frame(0x1, 0x4, 1, request_headers_block())
            for index in range(30):
                for connection in connections:
                    try:
                        connection.send(block[index:index + 1])
                    except OSError:
                        pass
                time.sleep(0.1)
        outcomes = [connection.read_until_closed(timeout=6) for connection in connections]
    assert all(closed for closed, _ in outcomes), f"{sum(not c for c, _ in outcomes)} connections still open"
    slowest = max(seconds for _, seconds in outcomes)
    assert not bystander.failures, bystander.failures[:3]
    report(f"100 connections sending {opening}", f"all closed within {slowest:.1f} s more (timeouts 1 s)",
           gateway.process.pid, rss_before, bystander)
    for connection in connections:
        connection.close()
    gateway.assert_alive()


def test_idle_connections_get_goaway_and_grpc_clients_reconnect(start_server, sim):
    gateway = start_gateway(start_server, sim, "--connection-idle-timeout", "1")
    connection = RawConnection(gateway.port)
    closed, seconds = connection.read_until_closed(timeout=5)
    assert closed and 0.9 < seconds < 5
    assert connection.goaway() == (0, b"idle timeout")
    channel = grpc.insecure_channel(gateway.address)
    stub = service_pb2_grpc.VLLMServiceStub(channel)
    assert list(stub.StreamChatCompletion(chat_request(max_tokens=4), timeout=10))
    time.sleep(2)  # the channel's connection is closed as idle meanwhile
    assert list(stub.StreamChatCompletion(chat_request(max_tokens=4), timeout=10))
    channel.close()


# MARK: MadeYouReset and other glitches


def made_you_reset(start_server, sim, scenario, call, provoke):
    """Opens streaming calls, one a millisecond, and makes the server reset each one 50 ms after
    it began (its upstream request is on its way by then), until the server ends the connection;
    checks how many of them reached vLLM."""
    gateway = start_gateway(start_server, sim, "--glitch-burst", "50", "--glitches-per-second", "10")
    rss_before = rss_kib(gateway.process.pid)
    with WellBehavedClient(gateway.address) as bystander:
        time.sleep(0.3)
        before = sim.stats()["requests"]
        bystander_before = len(bystander.latencies) + len(bystander.failures)
        connection = RawConnection(gateway.port)
        sent = 0
        lag = 50
        for index in range(1000 + lag):
            data = b""
            if index < 1000:
                data += call(1 + 2 * index)
            if index >= lag:
                data += provoke(1 + 2 * (index - lag))
            try:
                connection.send(data)
            except OSError:
                break
            sent = min(index + 1, 1000)
            time.sleep(0.001)
        closed, _ = connection.read_until_closed(timeout=10)
        time.sleep(0.5)
        bystander_calls = len(bystander.latencies) + len(bystander.failures) - bystander_before
        reached = sim.stats()["requests"] - before - bystander_calls
    assert closed, "the connection must be closed"
    assert connection.goaway()[0] == ENHANCE_YOUR_CALM
    # Without the glitch limit every call would reach vLLM; with it, about the burst (50) plus
    # the calls opened during the 50 ms before each reset.
    assert reached <= 160, f"{reached} of {sent} calls reached vLLM"
    assert not bystander.failures, bystander.failures[:3]
    report(scenario, f"GOAWAY ENHANCE_YOUR_CALM after {len(connection.resets())} resets; "
           f"about {reached} of {sent} calls reached vLLM", gateway.process.pid, rss_before, bystander)
    connection.close()
    gateway.assert_alive()


def test_made_you_reset_with_window_update_overflow(start_server, sim):
    request = chat_request(max_tokens=500, tokens_per_second=20)
    made_you_reset(start_server, sim, "MadeYouReset: WINDOW_UPDATE overflowing each stream's window, 50 ms in",
                   lambda stream_id: open_stream(stream_id, request),
                   lambda stream_id: window_update(stream_id, 0x7FFFFFFF))


def test_made_you_reset_with_content_length_mismatch(start_server, sim):
    request = chat_request(max_tokens=500, tokens_per_second=20)
    # The body is sent 50 ms after the headers, longer than their content-length says.
    made_you_reset(start_server, sim, "MadeYouReset: DATA longer than content-length, 50 ms in",
                   lambda stream_id: frame(0x1, 0x4, stream_id, request_headers_block(
                       extra=[("content-length", "3")])),
                   lambda stream_id: frame(0x0, 0x1, stream_id, grpc_message(request)))


def flood(start_server, sim, scenario, frames_for, setup=None):
    gateway = start_gateway(start_server, sim)
    rss_before = rss_kib(gateway.process.pid)
    with WellBehavedClient(gateway.address) as bystander:
        connection = RawConnection(gateway.port)
        if setup:
            connection.send(setup)
        sent = 0
        for index in range(20_000):
            try:
                connection.send(frames_for(index))
            except OSError:
                break
            sent += 1
        closed, _ = connection.read_until_closed(timeout=10)
    assert closed
    assert connection.goaway()[0] == ENHANCE_YOUR_CALM
    assert not bystander.failures, bystander.failures[:3]
    report(scenario, "GOAWAY ENHANCE_YOUR_CALM", gateway.process.pid, rss_before, bystander, frames_sent=sent)
    connection.close()
    gateway.assert_alive()


def test_empty_data_frame_flood_ends_the_connection(start_server, sim):
    setup = frame(0x1, 0x4, 1, request_headers_block())
    flood(start_server, sim, "empty DATA frame flood", lambda _: frame(0x0, 0, 1), setup=setup)


def test_priority_frame_flood_ends_the_connection(start_server, sim):
    flood(start_server, sim, "PRIORITY frame flood",
          lambda index: frame(0x2, 0, 1 + 2 * (index % 1000), struct.pack(">IB", 0, 16)))


def test_window_update_flood_ends_the_connection(start_server, sim):
    flood(start_server, sim, "WINDOW_UPDATE frame flood", lambda _: window_update(0, 1))


# MARK: keepalive and connection age


def test_ping_abuse_gets_too_many_pings(start_server, sim):
    gateway = start_gateway(start_server, sim)
    connection = RawConnection(gateway.port)
    for index in range(10):
        try:
            connection.send(frame(0x6, 0, 0, struct.pack(">Q", index)))
        except OSError:
            break
        time.sleep(0.01)
    closed, _ = connection.read_until_closed(timeout=5)
    assert closed
    assert connection.goaway() == (ENHANCE_YOUR_CALM, b"too_many_pings")
    acks = [f for f in connection.frames() if f[0] == 0x6 and f[1] & 1]
    assert len(acks) == 4, "pings are answered up to the third strike, and no further"


def test_pings_within_the_policy_are_answered(start_server, sim):
    gateway = start_gateway(start_server, sim, "--keepalive-min-ping-interval", "0.02",
                            "--keepalive-permit-without-calls")
    connection = RawConnection(gateway.port)
    for index in range(8):
        connection.send(frame(0x6, 0, 0, struct.pack(">Q", index)))
        time.sleep(0.1)
    closed, _ = connection.read_until_closed(timeout=0.5)
    assert not closed and connection.goaway() is None
    assert len([f for f in connection.frames() if f[0] == 0x6 and f[1] & 1]) == 8
    connection.close()


def test_maximum_connection_age_sends_goaway_and_lets_calls_finish(start_server, sim):
    gateway = start_gateway(start_server, sim, "--max-connection-age", "1", "--max-connection-age-grace", "10")
    connection = RawConnection(gateway.port)
    connection.send(open_stream(1, chat_request(max_tokens=30, tokens_per_second=15)))
    closed, seconds = connection.read_until_closed(timeout=10)
    assert closed
    assert connection.goaway()[0] == 0
    trailers_sent = [f for f in connection.frames() if f[0] == 0x1 and f[2] == 1 and f[1] & 0x1]
    assert trailers_sent, "the call in flight finished within the grace period"
    assert seconds >= 1.9, "the call ran to its end after the GOAWAY"
    connection.close()


# MARK: readers that never read


def test_unread_streams_hold_bounded_memory_and_are_reset_when_stuck(start_server):
    # A sim of its own: a thousand generations would slow the shared one for the other tests.
    sim = start_server("vllm-sim", "--port", "{port}", "--host", "127.0.0.1", "--tokens-per-second", "50")
    metrics_port = free_port()
    gateway = start_gateway(start_server, sim, "--stream-idle-timeout", "3", metrics_port=metrics_port)
    rss_before = rss_kib(gateway.process.pid)
    with WellBehavedClient(gateway.address) as bystander:
        # A zero stream window: the client takes nothing of any stream.
        connection = RawConnection(gateway.port, settings=[(0x4, 0)])
        request = chat_request(max_tokens=400, text="x" * 200)
        batch = b""
        for index in range(1000):
            batch += open_stream(1 + 2 * index, request)
        connection.send(batch)
        time.sleep(2.0)
        rss_held = rss_kib(gateway.process.pid)
        held = metrics(metrics_port)
        # Each stuck stream is reset once the timeout has passed since it last moved; resets free
        # buffer room, which lets streams that waited for it move again, so they go in waves.
        all_reset = connection.read_until(lambda: len(connection.resets()) >= 1000, timeout=45 * TIME_ALLOWANCE)
        closed, _ = connection.read_until_closed(timeout=0.5)
        time.sleep(0.5)
    after = metrics(metrics_port)
    # The simulator is busy aborting a thousand generations (far longer under a sanitizer): its
    # answer may take a while, and is waited for.
    deadline = time.monotonic() + 60
    while True:
        try:
            stats = http_json(f"http://{sim.address}/stats")
            break
        except OSError:
            assert time.monotonic() < deadline, "vllm-sim never answered /stats"
    assert not closed
    grown_mib = (rss_held - rss_before) / 1024
    assert grown_mib < 80, f"RSS grew by {grown_mib:.0f} MiB for 1,000 unread streams"
    assert held["vllm_grpc_gateway_calls_in_flight"] >= 1000
    # Only the bystander's calls ended OK: none of the 1,000 the client never read.
    assert after['vllm_grpc_gateway_calls_handled_total{grpc_code="OK"}'] == len(bystander.latencies)
    resets = connection.resets()
    assert all_reset and len(resets) == 1000 and all(code == 0x8 for _, code in resets), "each stuck stream is reset (CANCEL)"
    assert after['vllm_grpc_gateway_calls_handled_total{grpc_code="CANCELLED"}'] >= 1000
    # Every generation either ran out (400 tokens take 8 s) or was aborted when its stream was
    # reset; none is left running for a client that reads nothing.
    assert stats["aborted"] + stats["completed"] == stats["requests"] and stats["in_flight"] == 0, stats
    assert stats["aborted"] >= 500, stats
    assert not bystander.failures, bystander.failures[:3]
    report("1,000 streams with a zero window (never read)",
           f"RSS +{grown_mib:.0f} MiB while held; all reset after the stream idle timeout; "
           f"{stats['aborted']} generations aborted, none left running",
           gateway.process.pid, rss_before, bystander)
    connection.close()


# MARK: upstream bounds


def test_upstream_requests_in_flight_are_capped(start_server, sim):
    gateway = start_gateway(start_server, sim, "--max-upstream-requests", "5")
    channel = grpc.insecure_channel(gateway.address)
    stub = service_pb2_grpc.VLLMServiceStub(channel)
    calls = [stub.StreamChatCompletion(chat_request(max_tokens=20, tokens_per_second=20), timeout=20)
             for _ in range(12)]
    outcomes = []
    for call in calls:
        try:
            list(call)
            outcomes.append("OK")
        except grpc.RpcError as error:
            outcomes.append(error.code())
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "--max-upstream-requests" in error.details()
    assert outcomes.count("OK") == 5, outcomes
    assert list(stub.StreamChatCompletion(chat_request(max_tokens=2), timeout=10)), "places are given back"
    channel.close()


def test_upstream_requests_per_connection_are_capped(start_server, sim):
    gateway = start_gateway(start_server, sim, "--max-upstream-requests-per-connection", "3")
    # Two connections at once: the limit holds on each, not over both.
    channels = [grpc.insecure_channel(gateway.address, options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(2)]
    calls = [service_pb2_grpc.VLLMServiceStub(channel).StreamChatCompletion(
        chat_request(max_tokens=10, tokens_per_second=20), timeout=20) for channel in channels for _ in range(5)]
    codes = []
    for call in calls:
        try:
            list(call)
            codes.append("OK")
        except grpc.RpcError as error:
            codes.append(error.code())
            assert "--max-upstream-requests-per-connection" in error.details()
    assert codes[:5].count("OK") == 3 and codes[5:].count("OK") == 3, codes
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 4, codes
    for channel in channels:
        channel.close()


def test_upstream_pool_closes_idle_connections(start_server, sim):
    gateway = start_gateway(start_server, sim, "--upstream-idle-timeout", "1")
    channel = grpc.insecure_channel(gateway.address)
    stub = service_pb2_grpc.VLLMServiceStub(channel)
    before = open_descriptors(gateway.process.pid)
    calls = [stub.StreamChatCompletion(chat_request(max_tokens=5, tokens_per_second=50), timeout=20)
             for _ in range(300)]
    for call in calls:
        assert list(call)
    burst = open_descriptors(gateway.process.pid)
    time.sleep(2.5)
    after = open_descriptors(gateway.process.pid)
    channel.close()
    assert burst - before >= 100, "the burst opened many upstream connections"
    assert after - before <= 5, f"{after - before} descriptors still open after the idle timeout"


@pytest.mark.parametrize("length", [32_000, 1 << 20])
def test_an_error_quoting_a_huge_model_name_arrives_cut_short(gateway, length):
    # vLLM's "The model `…` does not exist" holds the name twice: the grpc-message of a 32 KB
    # name made a header block nghttp2 does not send, and the call hung until its deadline.
    from vllmgateway.v1 import chat_pb2
    request = chat_pb2.ChatCompletionRequest(model="m" * length, max_tokens=1,
                                             messages=[chat_pb2.ChatMessage(role="user", text="hi")])
    with grpc.insecure_channel(gateway.address, options=[("grpc.max_send_message_length", 8 << 20)]) as channel:
        stub = service_pb2_grpc.VLLMServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.CreateChatCompletion(request, timeout=10)
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
        details = refused.value.details()
        assert details.startswith("The model `mmm") and details.endswith(" [truncated]") and len(details) <= 1024
        with pytest.raises(grpc.RpcError) as streamed:
            list(stub.StreamChatCompletion(request, timeout=10))
        assert streamed.value.code() == grpc.StatusCode.NOT_FOUND and streamed.value.details().endswith("[truncated]")
