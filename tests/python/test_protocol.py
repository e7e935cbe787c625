"""gRPC over HTTP/2 as the wire sees it, with a raw HTTP/2 client: framing, request checks,
Trailers-Only, metadata encoding, deadlines, compression, and the errors for each."""

import base64
import json
import gzip
import struct
import time
import zlib

import pytest

from grpc_testing import empty_pb2, messages_pb2
from h2client import RawClient, grpc_frame, parse_frames

UNARY = "/grpc.testing.TestService/UnaryCall"
EMPTY = "/grpc.testing.TestService/EmptyCall"
INPUT = "/grpc.testing.TestService/StreamingInputCall"
OUTPUT = "/grpc.testing.TestService/StreamingOutputCall"


@pytest.fixture
def client(shared_interop):
    client = RawClient(shared_interop.port)
    yield client
    client.close()


def simple_request(size, body=b""):
    return messages_pb2.SimpleRequest(response_size=size, payload=messages_pb2.Payload(body=body)).SerializeToString()


def input_request(size):
    return messages_pb2.StreamingInputCallRequest(payload=messages_pb2.Payload(body=b"\0" * size)).SerializeToString()


def test_ok_response_shape(client):
    response = client.call(UNARY, simple_request(7))
    assert response.headers[":status"] == "200"
    assert response.headers["content-type"] == "application/grpc"
    assert "grpc-status" not in response.headers
    assert response.trailers["grpc-status"] == "0"
    [(compressed, message)] = parse_frames(response.data)
    assert not compressed
    assert messages_pb2.SimpleResponse.FromString(message).payload.body == b"\0" * 7


def test_message_split_across_data_frames_byte_by_byte(client):
    frame = grpc_frame(simple_request(3, b"abcdefgh" * 20))
    stream_id = client.start(UNARY)
    for index in range(len(frame)):
        client.send(stream_id, frame[index:index + 1])
    client.end(stream_id)
    response = client.finish(stream_id)
    assert response.status() == 0
    assert len(messages_pb2.SimpleResponse.FromString(parse_frames(response.data)[0][1]).payload.body) == 3


def test_several_messages_in_one_data_frame(client):
    body = b"".join(grpc_frame(input_request(n)) for n in (10, 20, 30, 0))
    stream_id = client.start(INPUT)
    client.send(stream_id, body, end_stream=True)
    response = client.finish(stream_id)
    assert response.status() == 0
    [(_, message)] = parse_frames(response.data)
    assert messages_pb2.StreamingInputCallResponse.FromString(message).aggregated_payload_size == 60


def test_message_larger_than_a_frame_and_window(client):
    body = b"\1" * (3 * 1024 * 1024)
    response = client.call(UNARY, simple_request(2, body))
    assert response.status() == 0


def test_method_must_be_post(client):
    stream_id = client.start(EMPTY, method="GET", end_stream=True)
    response = client.finish(stream_id)
    assert response.headers[":status"] == "405"
    assert response.headers["grpc-status"] == "13"


@pytest.mark.parametrize("content_type", ["text/plain", "application/grpc-web+json", "application/xml", None])
def test_content_type_must_be_grpc(client, content_type):
    stream_id = client.start(EMPTY, content_type=content_type, end_stream=True)
    response = client.finish(stream_id)
    assert response.headers[":status"] == "415"
    assert response.headers["grpc-status"] == "13"
    assert "content-type" in base64_free(response.headers["grpc-message"])


def test_web_content_types_are_answered_in_their_own_protocols(client):
    # application/json is Connect's: a server without a JSON mapping says so in Connect's form.
    stream_id = client.start(EMPTY, content_type="application/json", end_stream=True)
    response = client.finish(stream_id)
    assert response.headers[":status"] == "501"
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.data)["code"] == "unimplemented"
    # gRPC-Web carries the status in a trailers frame (flag 0x80) at the end of the body.
    stream_id = client.start(EMPTY, content_type="application/grpc-web", end_stream=True)
    response = client.finish(stream_id)
    assert response.headers[":status"] == "200"
    assert response.headers["content-type"] == "application/grpc-web+proto"
    assert "grpc-status" not in response.headers
    assert response.data[0] == 0x80
    assert b"grpc-status:13\r\n" in response.data


@pytest.mark.parametrize("content_type", ["application/grpc+proto", "application/grpc; charset=utf-8"])
def test_grpc_content_type_variants_accepted(client, content_type):
    response = client.call(EMPTY, b"", content_type=content_type)
    assert response.status() == 0


def test_te_trailers_required(client):
    response = client.call(EMPTY, b"", te=None)
    assert response.headers[":status"] == "200"
    assert response.status() == 13
    assert "te" in base64_free(response.headers["grpc-message"])


def test_trailers_only_error(client):
    stream_id = client.start("/grpc.testing.TestService/Nope", end_stream=True)
    response = client.finish(stream_id)
    # Trailers-Only: one HEADERS frame carrying the status and ending the stream, no trailers.
    assert response.trailers is None and response.data == b""
    assert response.headers[":status"] == "200"
    assert response.headers["grpc-status"] == "12"
    assert response.headers["grpc-message"] == "unknown method Nope for service grpc.testing.TestService"


def test_malformed_path(client):
    stream_id = client.start("/no-slash-method", end_stream=True)
    assert client.finish(stream_id).status() == 12


def test_grpc_message_is_percent_encoded(client):
    text = "bad ☺ 100%\n"
    request = messages_pb2.SimpleRequest(response_status=messages_pb2.EchoStatus(code=3, message=text))
    response = client.call(UNARY, request.SerializeToString())
    assert response.status() == 3
    raw = response.all_headers["grpc-message"]
    assert raw == "bad %E2%98%BA 100%25%0A"


@pytest.mark.parametrize("value", [base64.b64encode(b"\x00\x01\xfe\xff\x10").decode(),
                                   base64.b64encode(b"\x00\x01\xfe\xff\x10").decode().rstrip("=")])
def test_binary_metadata_padded_and_unpadded(client, value):
    response = client.call(EMPTY, b"", extra=[("x-grpc-test-echo-trailing-bin", value)])
    assert response.status() == 0
    echoed = response.trailers["x-grpc-test-echo-trailing-bin"]
    assert base64.b64decode(echoed + "=" * (-len(echoed) % 4)) == b"\x00\x01\xfe\xff\x10"


def test_invalid_binary_metadata(client):
    response = client.call(EMPTY, b"", extra=[("x-custom-bin", "not*base64!")])
    assert response.status() == 13
    assert "x-custom-bin" in response.headers["grpc-message"]


def test_text_metadata_echo(client):
    response = client.call(EMPTY, b"", extra=[("x-grpc-test-echo-initial", "hello world")])
    assert response.headers["x-grpc-test-echo-initial"] == "hello world"


@pytest.mark.parametrize("timeout", ["200m", "200000u", "20000000n", "1S"])
def test_grpc_timeout_units_become_deadlines(client, timeout):
    request = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=1, interval_us=3_000_000)])
    started = time.monotonic()
    response = client.call(OUTPUT, request.SerializeToString(), extra=[("grpc-timeout", timeout)])
    elapsed = time.monotonic() - started
    assert response.status() == 4
    assert elapsed < 2.5


@pytest.mark.parametrize("timeout", ["1M", "1H"])
def test_long_grpc_timeout_units_do_not_fire_early(client, timeout):
    response = client.call(EMPTY, b"", extra=[("grpc-timeout", timeout)])
    assert response.status() == 0


@pytest.mark.parametrize("timeout", ["", "10", "abcS", "123456789S", "5x"])
def test_malformed_grpc_timeout(client, timeout):
    response = client.call(EMPTY, b"", extra=[("grpc-timeout", timeout)])
    assert response.status() == 13
    assert "grpc-timeout" in response.headers["grpc-message"]


def test_gzip_request_and_response(client):
    message = messages_pb2.SimpleRequest(response_size=1000, payload=messages_pb2.Payload(body=b"z" * 4000),
                                         response_compressed=messages_pb2.BoolValue(value=True)).SerializeToString()
    compressed = gzip.compress(message)
    stream_id = client.start(UNARY, extra=[("grpc-encoding", "gzip"), ("grpc-accept-encoding", "identity,gzip")])
    client.send(stream_id, grpc_frame(compressed, compressed=True), end_stream=True)
    response = client.finish(stream_id)
    assert response.status() == 0
    assert response.headers["grpc-encoding"] == "gzip"
    [(flag, body)] = parse_frames(response.data)
    assert flag
    assert len(messages_pb2.SimpleResponse.FromString(gzip.decompress(body)).payload.body) == 1000


def test_deflate_request(client):
    message = simple_request(10, b"q" * 1000)
    stream_id = client.start(UNARY, extra=[("grpc-encoding", "deflate")])
    client.send(stream_id, grpc_frame(zlib.compress(message), compressed=True), end_stream=True)
    response = client.finish(stream_id)
    assert response.status() == 0
    # The client did not say it accepts deflate: the answer is not compressed.
    [(flag, _)] = parse_frames(response.data)
    assert not flag


def test_unsupported_encoding(client):
    response = client.call(EMPTY, b"", extra=[("grpc-encoding", "snappy")])
    assert response.status() == 12
    assert response.headers["grpc-accept-encoding"] == "identity,gzip,deflate"
    assert "snappy" in response.headers["grpc-message"]


def test_compressed_flag_without_encoding(client):
    stream_id = client.start(EMPTY)
    client.send(stream_id, grpc_frame(gzip.compress(b""), compressed=True), end_stream=True)
    response = client.finish(stream_id)
    assert response.status() == 13
    assert "compressed" in response.all_headers["grpc-message"]


def test_corrupt_compressed_message(client):
    stream_id = client.start(EMPTY, extra=[("grpc-encoding", "gzip")])
    client.send(stream_id, grpc_frame(b"this is not gzip", compressed=True), end_stream=True)
    response = client.finish(stream_id)
    assert response.status() == 13
    assert "decompress" in response.all_headers["grpc-message"]


def test_invalid_compression_flag(client):
    stream_id = client.start(EMPTY)
    client.send(stream_id, struct.pack(">BI", 7, 0), end_stream=True)
    assert client.finish(stream_id).status() == 13


def test_message_that_does_not_parse(client):
    response = client.call(UNARY, b"\xff\xff\xff\xff")
    assert response.status() == 13
    assert "parse" in response.all_headers["grpc-message"]


def test_more_than_one_message_on_unary(client):
    stream_id = client.start(UNARY)
    client.send(stream_id, grpc_frame(simple_request(1)) + grpc_frame(simple_request(1)), end_stream=True)
    response = client.finish(stream_id)
    assert response.status() == 12


def test_no_message_on_unary(client):
    stream_id = client.start(UNARY, end_stream=True)
    assert client.finish(stream_id).status() == 13


def test_stream_ending_inside_a_message(client):
    stream_id = client.start(UNARY)
    client.send(stream_id, grpc_frame(simple_request(1, b"x" * 100))[:50], end_stream=True)
    response = client.finish(stream_id)
    assert response.status() == 13
    assert "middle of a message" in response.all_headers["grpc-message"]


def test_keepalive_ping_answered(client):
    client.ping(b"keepaliv")
    import h2.events
    assert client.wait(lambda: any(isinstance(e, h2.events.PingAckReceived) and e.ping_data == b"keepaliv"
                                   for e in client.events))


def test_settings_advertised(client):
    import h2.settings
    client.wait(lambda: h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS in client.remote_settings)
    assert client.remote_settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] == 1000
    assert client.remote_settings[h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE] == 16384


def test_header_list_too_large(client):
    big = [("x-big-%d" % i, "v" * 1000) for i in range(20)]
    response = client.call(EMPTY, b"", extra=big)
    assert response.status() == 8
    assert "header list" in response.headers["grpc-message"]


def test_server_keeps_serving_after_errors(client):
    client.call(UNARY, b"\xff\xff")
    response = client.call(EMPTY, b"")
    assert response.status() == 0


def base64_free(text):
    return text


def test_trailers_nghttp2_will_not_send_reset_the_stream_instead_of_hanging_it(start_server):
    # Trailing metadata that makes a header block past nghttp2's 64 KiB (here the interop
    # server's echo of a 65,500-byte value from a client it lets send that much; nghttp2 counts
    # a block's bound as its lengths plus 11 bytes a field and 12): nghttp2 does not send the
    # block and leaves the stream open, so the client waited until its deadline. It is reset.
    server = start_server("grpc-interop-server", "--port", "{port}", "--host", "127.0.0.1",
                          "--max-header-list-size", "1000000")
    client = RawClient(server.port, timeout=10)
    try:
        echo = base64.b64encode(b"\x01" * 49_125).decode()
        assert len(echo) == 65_500
        response = client.call(UNARY, simple_request(1), extra=[("x-grpc-test-echo-trailing-bin", echo)])
        assert response.reset == 2  # INTERNAL_ERROR
        assert server.wait_for_log("response headers not sent; the stream is reset")
        # The connection goes on serving.
        assert client.call(UNARY, simple_request(1)).status() == 0
    finally:
        client.close()
