"""Malformed HTTP/2 requests (RFC 9113 sections 8.1.1, 8.2 and 8.3), from a raw client that sends
what a gRPC library never would: each is a stream error, RST_STREAM with PROTOCOL_ERROR, before
any handler runs, and the connection goes on serving. This is what nghttp2's HTTP messaging
rules give the server today (with no on_invalid_header callback, an invalid field resets the
stream rather than being dropped), so that any change to who checks them (the server's own
header parse, say) is held to the same answers."""

import pytest

from h2client import RawClient, Response, grpc_frame

EMPTY = "/grpc.testing.TestService/EmptyCall"
CHAT = "/vllmgateway.v1.VLLMService/CreateChatCompletion"
PROTOCOL_ERROR = 1
REQUEST = [(":method", "POST"), (":scheme", "http"), (":path", EMPTY), (":authority", "localhost")]
GRPC = [("content-type", "application/grpc"), ("te", "trailers")]


@pytest.fixture
def client(shared_interop):
    client = RawClient(shared_interop.port)
    yield client
    client.close()


def send_request(client, headers, body=grpc_frame(b""), end_stream=True):
    """Sends `headers` exactly as given (names, values, order; the client checks none), then
    `body`; returns the stream's id and the Response its answer fills in."""
    stream_id = client.conn.get_next_available_stream_id()
    client.conn.send_headers(stream_id, headers, end_stream=body is None and end_stream)
    response = client.responses[stream_id] = Response()
    client.flush()
    if body is not None:
        client.send(stream_id, body, end_stream=end_stream)
    return stream_id, response


def assert_reset_and_still_serving(client, headers, body=grpc_frame(b"")):
    _, response = send_request(client, headers, body)
    assert client.wait(lambda: response.reset is not None or response.ended), "the stream was neither reset nor ended"
    assert response.reset == PROTOCOL_ERROR, f"answered {response.headers} {response.trailers} instead of a reset"
    assert response.headers is None, "a malformed request must not be answered"
    assert client.goaway is None and not client.closed
    assert client.call(EMPTY, b"").status() == 0


def without(headers, name):
    return [(key, value) for key, value in headers if key != name]


@pytest.mark.parametrize("name", [":method", ":scheme", ":path"])
def test_a_missing_required_pseudo_header_resets_the_stream(client, name):
    assert_reset_and_still_serving(client, without(REQUEST, name) + GRPC)


@pytest.mark.parametrize("header", [(":path", "/first"), (":method", "POST"), (":scheme", "http")])
def test_a_repeated_pseudo_header_resets_the_stream(client, header):
    assert_reset_and_still_serving(client, REQUEST + [header] + GRPC)


def test_a_pseudo_header_after_a_regular_one_resets_the_stream(client):
    assert_reset_and_still_serving(client, REQUEST[:3] + GRPC + [REQUEST[3]])


@pytest.mark.parametrize("name", [":status", ":unknown"])
def test_a_pseudo_header_a_request_cannot_carry_resets_the_stream(client, name):
    assert_reset_and_still_serving(client, REQUEST + [(name, "200")] + GRPC)


@pytest.mark.parametrize("path", ["", "no-leading-slash"])
def test_an_invalid_path_resets_the_stream(client, path):
    assert_reset_and_still_serving(client, [(key, path if key == ":path" else value) for key, value in REQUEST] + GRPC)


def test_an_upper_case_header_name_resets_the_stream(client):
    assert_reset_and_still_serving(client, REQUEST + GRPC + [("X-Upper", "value")])


@pytest.mark.parametrize("header", [("connection", "keep-alive"), ("keep-alive", "300"), ("proxy-connection", "x"),
                                    ("transfer-encoding", "chunked"), ("upgrade", "h2c")])
def test_a_connection_specific_header_resets_the_stream(client, header):
    assert_reset_and_still_serving(client, REQUEST + GRPC + [header])


def test_te_other_than_trailers_resets_the_stream(client):
    assert_reset_and_still_serving(client, REQUEST + [("content-type", "application/grpc"), ("te", "gzip")])


@pytest.mark.parametrize("lengths", [["abc"], ["5", "6"]])
def test_an_invalid_or_repeated_content_length_resets_the_stream(client, lengths):
    assert_reset_and_still_serving(client, REQUEST + GRPC + [("content-length", value) for value in lengths])


def test_data_shorter_than_its_content_length_resets_the_stream(client):
    # Longer than its content-length is test_hostile_clients' MadeYouReset case.
    assert_reset_and_still_serving(client, REQUEST + GRPC + [("content-length", "50")], body=grpc_frame(b""))


def test_trailers_without_end_stream_reset_the_stream(client):
    stream_id, response = send_request(client, REQUEST + GRPC, body=grpc_frame(b""), end_stream=False)
    # The h2 library will not send trailers without END_STREAM: the frame is made here, its
    # block encoded by the connection's own encoder so that both ends' tables stay in step.
    block = client.conn.encoder.encode([("x-trailer", "1")])
    END_HEADERS = 0x4
    client.send_raw(len(block).to_bytes(3, "big") + bytes([0x1, END_HEADERS]) + stream_id.to_bytes(4, "big") + block)
    assert client.wait(lambda: response.reset is not None or response.ended)
    assert response.reset == PROTOCOL_ERROR
    assert client.call(EMPTY, b"").status() == 0


def test_a_pseudo_header_in_trailers_resets_the_stream(client):
    stream_id, response = send_request(client, REQUEST + GRPC, body=grpc_frame(b""), end_stream=False)
    client.conn.send_headers(stream_id, [(":path", EMPTY)], end_stream=True)
    client.flush()
    assert client.wait(lambda: response.reset is not None or response.ended)
    assert response.reset == PROTOCOL_ERROR
    assert client.call(EMPTY, b"").status() == 0


@pytest.mark.parametrize("value", ["nul\x00inside", "line\nbreak", "carriage\rreturn", " leading space",
                                   "trailing tab\t"])
def test_a_header_value_with_forbidden_bytes_resets_the_stream(client, value):
    # RFC 9113 section 8.2.1: such a request is malformed; dropping the field is allowed too,
    # but a gateway that forwarded the rest would let a client smuggle a request past a check
    # that did see the field.
    assert_reset_and_still_serving(client, REQUEST + GRPC + [("x-grpc-test-echo-initial", value)])


@pytest.mark.parametrize("name", ["space inside", "colon:inside", "quote\"inside", ""])
def test_a_header_name_with_forbidden_bytes_resets_the_stream(client, name):
    assert_reset_and_still_serving(client, REQUEST + GRPC + [(name, "value")])


def test_a_malformed_request_never_reaches_vllm(gateway, sim):
    client = RawClient(gateway.port)
    try:
        before = sim.stats()["requests"]
        headers = [(key, CHAT if key == ":path" else value) for key, value in REQUEST] + GRPC
        for malformed in ([*headers, ("X-Upper", "1")], [*headers, ("connection", "close")],
                          [*headers, (":path", CHAT)], without(headers, ":scheme")):
            _, response = send_request(client, malformed, body=grpc_frame(b"\x0a\x09sim-model"))
            assert client.wait(lambda: response.reset is not None or response.ended)
            assert response.reset == PROTOCOL_ERROR
        assert sim.stats()["requests"] == before
    finally:
        client.close()
