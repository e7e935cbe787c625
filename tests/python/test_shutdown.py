"""Graceful shutdown on SIGTERM and SIGINT: GOAWAY, in-flight calls finish within the grace
period, new connections are refused, the process exits cleanly."""

import signal
import socket
import time

import grpc
import pytest

from grpc_testing import messages_pb2, test_pb2_grpc
from h2client import RawClient, grpc_frame, parse_frames

OUTPUT = "/grpc.testing.TestService/StreamingOutputCall"


def paced(count, interval_us):
    return messages_pb2.StreamingOutputCallRequest(response_parameters=[
        messages_pb2.ResponseParameters(size=4, interval_us=interval_us) for _ in range(count)])


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_in_flight_call_finishes_and_new_connections_are_refused(start_server, signal_number):
    server = start_server("grpc-interop-server", "--port", "{port}", "--shutdown-grace-period", "10")
    client = RawClient(server.port)
    stream_id = client.start(OUTPUT)
    client.send(stream_id, grpc_frame(paced(10, 100_000).SerializeToString()), end_stream=True)
    client.wait(lambda: len(client.responses[stream_id].data) > 0)

    server.signal(signal_number)
    assert client.wait(lambda: client.goaway is not None), "no GOAWAY after the signal"
    time.sleep(0.3)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()

    response = client.finish(stream_id)
    assert response.status() == 0
    assert len(parse_frames(response.data)) == 10  # every message arrived
    assert server.process.wait(timeout=10) == 0
    assert "stopped" in server.log()
    assert "ERROR" not in server.log()


def test_goaway_names_the_last_stream_it_will_process(start_server):
    server = start_server("grpc-interop-server", "--port", "{port}")
    client = RawClient(server.port)
    first = client.start(OUTPUT)
    client.send(first, grpc_frame(paced(3, 200_000).SerializeToString()), end_stream=True)
    client.wait(lambda: len(client.responses[first].data) > 0)
    server.signal()
    assert client.wait(lambda: client.goaway is not None and client.goaway.last_stream_id == first)
    assert client.finish(first).status() == 0


def test_grace_period_bounds_shutdown(start_server):
    server = start_server("grpc-interop-server", "--port", "{port}", "--shutdown-grace-period", "1")
    channel = grpc.insecure_channel(server.address)
    stub = test_pb2_grpc.TestServiceStub(channel)
    responses = stub.StreamingOutputCall(paced(100, 200_000), timeout=60)
    next(responses)
    started = time.monotonic()
    server.signal()
    with pytest.raises(grpc.RpcError) as error:
        list(responses)
    assert error.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED,
                                  grpc.StatusCode.INTERNAL)
    assert server.process.wait(timeout=10) == 0
    assert time.monotonic() - started < 5
    channel.close()


def test_idle_server_stops_at_once(start_server):
    server = start_server("grpc-interop-server", "--port", "{port}")
    idle = RawClient(server.port)
    import h2.settings
    assert idle.wait(lambda: h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS in idle.remote_settings)
    started = time.monotonic()
    server.signal()
    assert idle.wait(lambda: idle.goaway is not None)
    assert server.process.wait(timeout=10) == 0
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("executable, args", [
    ("grpc-interop-server", ["--port", "{port}"]),
    ("vllm-sim", ["--port", "{port}"]),
    ("vllm-grpc-gateway", ["--listen", "127.0.0.1:{port}", "--upstream", "http://127.0.0.1:9"]),
])
def test_signal_as_soon_as_the_port_answers_stops_gracefully(start_server, executable, args):
    # A supervisor (or this suite) may signal the moment the port answers: the handlers must be
    # in place by then, or the default action kills the process (exit -15) and drops its
    # connections with a reset, or the signal goes unseen and the process hangs.
    for _ in range(10):
        server = start_server(executable, *args)
        server.signal()
        assert server.process.wait(timeout=10) == 0, server.log()
