"""The interop test cases (grpc/doc/interop-test-descriptions.md) run by a real grpcio client
against grpc-interop-server."""

import grpc
import pytest

from grpc_testing import empty_pb2, messages_pb2, test_pb2_grpc


@pytest.fixture
def stub(shared_interop):
    channel = grpc.insecure_channel(shared_interop.address)
    yield test_pb2_grpc.TestServiceStub(channel)
    channel.close()


def test_empty_unary(stub):
    assert stub.EmptyCall(empty_pb2.Empty(), timeout=5) == empty_pb2.Empty()


def test_large_unary(stub):
    request = messages_pb2.SimpleRequest(response_size=314159, payload=messages_pb2.Payload(body=b"\0" * 271828))
    response = stub.UnaryCall(request, timeout=10)
    assert response.payload.body == b"\0" * 314159


def test_client_streaming(stub):
    sizes = [27182, 8, 1828, 45904]
    requests = (messages_pb2.StreamingInputCallRequest(payload=messages_pb2.Payload(body=b"\0" * n)) for n in sizes)
    assert stub.StreamingInputCall(requests, timeout=10).aggregated_payload_size == 74922


def test_server_streaming(stub):
    sizes = [31415, 9, 2653, 58979]
    request = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=n) for n in sizes])
    assert [len(r.payload.body) for r in stub.StreamingOutputCall(request, timeout=10)] == sizes


def test_ping_pong(stub):
    sizes = [31415, 9, 2653, 58979]
    requests = (messages_pb2.StreamingOutputCallRequest(response_parameters=[messages_pb2.ResponseParameters(size=n)],
                                                        payload=messages_pb2.Payload(body=b"\0" * 10)) for n in sizes)
    assert [len(r.payload.body) for r in stub.FullDuplexCall(requests, timeout=10)] == sizes


def test_half_duplex(stub):
    sizes = [5, 7, 11]
    requests = (messages_pb2.StreamingOutputCallRequest(response_parameters=[messages_pb2.ResponseParameters(size=n)])
                for n in sizes)
    assert [len(r.payload.body) for r in stub.HalfDuplexCall(requests, timeout=10)] == sizes


def test_empty_stream(stub):
    assert list(stub.FullDuplexCall(iter([]), timeout=5)) == []


def test_custom_metadata(stub):
    metadata = [("x-grpc-test-echo-initial", "test_initial_metadata_value"),
                ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab")]
    response, call = stub.UnaryCall.with_call(messages_pb2.SimpleRequest(response_size=314159), metadata=metadata,
                                              timeout=5)
    assert len(response.payload.body) == 314159
    assert ("x-grpc-test-echo-initial", "test_initial_metadata_value") in call.initial_metadata()
    assert ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab") in call.trailing_metadata()

    responses = stub.FullDuplexCall(iter([messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=314159)])]), metadata=metadata, timeout=5)
    assert [len(r.payload.body) for r in responses] == [314159]
    assert ("x-grpc-test-echo-initial", "test_initial_metadata_value") in responses.initial_metadata()
    assert ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab") in responses.trailing_metadata()


def test_status_code_and_message(stub):
    message = "test status message"
    with pytest.raises(grpc.RpcError) as error:
        stub.UnaryCall(messages_pb2.SimpleRequest(response_status=messages_pb2.EchoStatus(code=2, message=message)),
                       timeout=5)
    assert error.value.code() == grpc.StatusCode.UNKNOWN and error.value.details() == message

    with pytest.raises(grpc.RpcError) as error:
        list(stub.FullDuplexCall(iter([messages_pb2.StreamingOutputCallRequest(
            response_status=messages_pb2.EchoStatus(code=2, message=message))]), timeout=5))
    assert error.value.code() == grpc.StatusCode.UNKNOWN and error.value.details() == message


def test_special_status_message(stub):
    """grpc-message is percent-encoded UTF-8; this text crosses every escaping rule."""
    message = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n%"
    with pytest.raises(grpc.RpcError) as error:
        stub.UnaryCall(messages_pb2.SimpleRequest(response_status=messages_pb2.EchoStatus(code=2, message=message)),
                       timeout=5)
    assert error.value.code() == grpc.StatusCode.UNKNOWN
    assert error.value.details() == message


def test_unimplemented_method(stub):
    with pytest.raises(grpc.RpcError) as error:
        stub.UnimplementedCall(empty_pb2.Empty(), timeout=5)
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "UnimplementedCall" in error.value.details()


def test_unimplemented_service(shared_interop):
    channel = grpc.insecure_channel(shared_interop.address)
    stub = test_pb2_grpc.UnimplementedServiceStub(channel)
    with pytest.raises(grpc.RpcError) as error:
        stub.UnimplementedCall(empty_pb2.Empty(), timeout=5)
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert error.value.details() == "unknown service grpc.testing.UnimplementedService"
    channel.close()


def test_client_compressed_unary(stub):
    # The probe: expect_compressed on an uncompressed message must fail.
    with pytest.raises(grpc.RpcError) as error:
        stub.UnaryCall(messages_pb2.SimpleRequest(expect_compressed=messages_pb2.BoolValue(value=True),
                                                  response_size=314159), timeout=5)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    response = stub.UnaryCall(messages_pb2.SimpleRequest(expect_compressed=messages_pb2.BoolValue(value=True),
                                                         response_size=314159,
                                                         payload=messages_pb2.Payload(body=b"\0" * 271828)),
                              compression=grpc.Compression.Gzip, timeout=5)
    assert len(response.payload.body) == 314159


def test_server_compressed_unary(stub):
    for compressed in (True, False):
        response = stub.UnaryCall(messages_pb2.SimpleRequest(response_compressed=messages_pb2.BoolValue(value=compressed),
                                                             response_size=314159), timeout=5)
        assert response.payload.body == b"\0" * 314159


def test_server_compressed_streaming(stub):
    request = messages_pb2.StreamingOutputCallRequest(response_parameters=[
        messages_pb2.ResponseParameters(size=31415, compressed=messages_pb2.BoolValue(value=True)),
        messages_pb2.ResponseParameters(size=92653, compressed=messages_pb2.BoolValue(value=False))])
    assert [len(r.payload.body) for r in stub.StreamingOutputCall(request, timeout=5)] == [31415, 92653]


def test_deflate_request(stub):
    response = stub.UnaryCall(messages_pb2.SimpleRequest(response_size=100, payload=messages_pb2.Payload(body=b"x" * 5000)),
                              compression=grpc.Compression.Deflate, timeout=5)
    assert len(response.payload.body) == 100


def test_timeout_on_sleeping_server(stub):
    request = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=1, interval_us=2_000_000)])
    with pytest.raises(grpc.RpcError) as error:
        list(stub.StreamingOutputCall(request, timeout=0.1))
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_cancel_after_first_response(stub, shared_interop):
    requests = iter([messages_pb2.StreamingOutputCallRequest(response_parameters=[
        messages_pb2.ResponseParameters(size=31415), messages_pb2.ResponseParameters(size=9, interval_us=5_000_000)])])
    responses = stub.FullDuplexCall(requests, timeout=10)
    assert len(next(responses).payload.body) == 31415
    responses.cancel()
    with pytest.raises(grpc.RpcError) as error:
        next(responses)
    assert error.value.code() == grpc.StatusCode.CANCELLED
    assert shared_interop.wait_for_log("reason=client reset"), "server did not see the cancellation"
    assert stub.EmptyCall(empty_pb2.Empty(), timeout=5) == empty_pb2.Empty()
