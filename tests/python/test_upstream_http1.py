"""The gateway's own HTTP/1.1 client against an upstream that frames its responses in every way
HTTP/1.1 allows, and in ways it does not: a scripted raw-socket server stands in for vLLM, and a
real grpcio client calls the gateway in front of it."""

import json
import select
import socket
import threading

import grpc
import pytest
from vllmgateway.v1 import chat_pb2, service_pb2_grpc

COMPLETION = json.dumps({
    "id": "chatcmpl-raw", "object": "chat.completion", "created": 1, "model": "raw-model",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "framed right"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}).encode()


def chunk_event(text, finish=None):
    return ("data: " + json.dumps({
        "id": "chatcmpl-raw", "object": "chat.completion.chunk", "created": 1, "model": "raw-model",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}) + "\n\n").encode()


STREAM = b"".join(chunk_event(word) for word in ["one", " two", " three"]) + chunk_event("", "stop") \
    + b"data: [DONE]\n\n"


def chunked(body, size):
    """`body` in chunks of `size` bytes, with a chunk extension on every other one."""
    out = b""
    for index, start in enumerate(range(0, len(body), size)):
        piece = body[start:start + size]
        out += b"%x%s\r\n%s\r\n" % (len(piece), b";ext=1" if index % 2 else b"", piece)
    return out + b"0\r\nx-trailer: yes\r\n\r\n"


class RawUpstream:
    """Answers each request with the bytes `script(request_number)` returns, written in small
    pieces so that the gateway's reads cut them anywhere. `None` closes the connection after
    reading the request. The arrivals numbered in `close_unread` (counting every request that
    arrives) meet a server closing what it saw as an idle connection: it closes with the request
    unread, and its kernel resets the connection."""

    def __init__(self, script, close_unread=(), piece=7):
        self.script = script
        self.piece = piece
        self.close_unread = set(close_unread)
        self.arrivals = 0
        self.unread = 0
        self.requests = 0
        self.connections = 0
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection):
        buffered = b""
        with connection:
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while True:
                if not buffered:
                    select.select([connection], [], [])
                    self.arrivals += 1
                    if self.arrivals in self.close_unread:
                        self.unread += 1
                        return
                while b"\r\n\r\n" not in buffered:
                    data = connection.recv(65536)
                    if not data:
                        return
                    buffered += data
                head, _, buffered = buffered.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(buffered) < length:
                    buffered += connection.recv(65536)
                buffered = buffered[length:]
                self.requests += 1
                answer = self.script(self.requests)
                if answer is None:
                    return
                for start in range(0, len(answer), self.piece):
                    connection.sendall(answer[start:start + self.piece])
                if b"connection: close" in answer.lower():
                    return

    def close(self):
        self.listener.close()


@pytest.fixture
def upstream_gateway(start_server):
    def make(script, close_unread=(), piece=7):
        upstream = RawUpstream(script, close_unread, piece)
        gateway = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--upstream",
                               f"http://127.0.0.1:{upstream.port}")
        channel = grpc.insecure_channel(gateway.address)
        return upstream, service_pb2_grpc.VLLMServiceStub(channel)
    return make


REQUEST = chat_pb2.ChatCompletionRequest(model="raw-model", messages=[chat_pb2.ChatMessage(role="user", text="hi")])
JSON_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"


def test_chunked_json_with_extensions_and_trailers(upstream_gateway):
    _, vllm = upstream_gateway(lambda n: JSON_HEAD + b"transfer-encoding: chunked\r\n\r\n" + chunked(COMPLETION, 5))
    reply = vllm.CreateChatCompletion(REQUEST, timeout=10)
    assert reply.choices[0].message.content == "framed right"


def test_event_stream_cut_anywhere(upstream_gateway):
    _, vllm = upstream_gateway(lambda n: SSE_HEAD + b"transfer-encoding: chunked\r\n\r\n" + chunked(STREAM, 11))
    chunks = list(vllm.StreamChatCompletion(REQUEST, timeout=10))
    assert "".join(c.choices[0].delta.content for c in chunks if c.choices) == "one two three"


def test_body_delimited_by_close_and_interim_response(upstream_gateway):
    upstream, vllm = upstream_gateway(
        lambda n: b"HTTP/1.1 100 Continue\r\n\r\n" + JSON_HEAD + b"connection: close\r\n\r\n" + COMPLETION)
    for _ in range(2):
        assert vllm.CreateChatCompletion(REQUEST, timeout=10).choices[0].message.content == "framed right"
    # A response that ends with the connection leaves nothing to reuse.
    assert upstream.connections == 2


def test_keep_alive_connections_are_reused(upstream_gateway):
    upstream, vllm = upstream_gateway(
        lambda n: JSON_HEAD + b"content-length: %d\r\n\r\n" % len(COMPLETION) + COMPLETION)
    for _ in range(5):
        vllm.CreateChatCompletion(REQUEST, timeout=10)
    assert upstream.requests == 5 and upstream.connections == 1


def test_an_idle_connection_closed_by_the_upstream_is_replaced(upstream_gateway):
    # The second request arrives on a connection the upstream closes with it unread, as a server
    # whose keep-alive timeout just ran out does: the gateway sends it again, once.
    upstream, vllm = upstream_gateway(
        lambda n: JSON_HEAD + b"content-length: %d\r\n\r\n" % len(COMPLETION) + COMPLETION, close_unread={2})
    for _ in range(3):
        assert vllm.CreateChatCompletion(REQUEST, timeout=10).choices[0].message.content == "framed right"
    assert (upstream.unread, upstream.requests, upstream.connections) == (1, 3, 2)


def test_a_request_the_upstream_read_is_never_sent_again(upstream_gateway):
    # The upstream reads the second request and closes without a word, as a server that dies
    # does: the request may have reached vLLM, so the call fails rather than run twice.
    upstream, vllm = upstream_gateway(
        lambda n: None if n == 2 else JSON_HEAD + b"content-length: %d\r\n\r\n" % len(COMPLETION) + COMPLETION)
    vllm.CreateChatCompletion(REQUEST, timeout=10)
    with pytest.raises(grpc.RpcError) as failure:
        vllm.CreateChatCompletion(REQUEST, timeout=10)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    assert failure.value.details() == "vLLM closed the connection before the response ended"
    assert upstream.requests == 2
    assert vllm.CreateChatCompletion(REQUEST, timeout=10).choices[0].message.content == "framed right"


@pytest.mark.parametrize("answer", [
    b"HTTP/2 200\r\n\r\n",
    b"garbage that is not a response\r\n\r\n",
    JSON_HEAD + b"transfer-encoding: chunked\r\n\r\nzz\r\n",
    JSON_HEAD + b"transfer-encoding: gzip\r\n\r\n",
    JSON_HEAD + b"content-length: 5\r\ncontent-length: 6\r\n\r\nabcde",
])
def test_malformed_responses_fail_the_call_and_the_gateway_goes_on(upstream_gateway, answer):
    upstream, vllm = upstream_gateway(
        lambda n: answer if n == 1 else JSON_HEAD + b"content-length: %d\r\n\r\n" % len(COMPLETION) + COMPLETION)
    with pytest.raises(grpc.RpcError) as failure:
        vllm.CreateChatCompletion(REQUEST, timeout=10)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "malformed" in failure.value.details()
    # The broken connection is gone; the next call gets a fresh one and succeeds.
    assert vllm.CreateChatCompletion(REQUEST, timeout=10).choices[0].message.content == "framed right"


def test_a_stream_cut_mid_chunk_is_not_ok(upstream_gateway):
    whole = chunked(STREAM, 11)
    # The upstream goes away half way through a chunk.
    _, vllm = upstream_gateway(
        lambda n: SSE_HEAD + b"connection: close\r\ntransfer-encoding: chunked\r\n\r\n" + whole[:len(whole) // 2])
    with pytest.raises(grpc.RpcError) as failure:
        list(vllm.StreamChatCompletion(REQUEST, timeout=10))
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_whole_chunk_is_one_event_only_when_it_is_one_line(upstream_gateway):
    # Each event in a chunk of its own, all in one write, as vLLM streams: the gateway offers such
    # a chunk to the stream as it lies, without looking for line breaks in it. The first stream
    # teaches the gateway the bytes its chunks repeat, which the next stream starts with. That one
    # has a line break after its first member: its first event comes as two data lines, which the
    # event stream joins with that line break (valid JSON, and the head the stream then repeats).
    # Then a chunk holds the same bytes with its second line not a data line: an event of the
    # first line alone, not JSON, which must fail the call, not pass as a token.
    def event(text, line_break=None):
        body = json.dumps({
            "id": "chatcmpl-raw", "object": "chat.completion.chunk", "created": 1, "model": "raw-model",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})
        if line_break is not None:
            body = body.replace('"chatcmpl-raw", ', '"chatcmpl-raw",' + line_break)
        return ("data: " + body + "\n\n").encode()

    def stream(events):
        return SSE_HEAD + b"transfer-encoding: chunked\r\n\r\n" + b"".join(
            b"%x\r\n%s\r\n" % (len(one), one) for one in events + [b"data: [DONE]\n\n"]) + b"0\r\n\r\n"

    tokens = ["t%d" % number for number in range(8)]
    first = stream([event(text) for text in tokens])
    second = stream([event("u0", line_break="\ndata: "), event("EVIL", line_break="\n"), event("u1")])
    _, vllm = upstream_gateway(lambda n: first if n == 1 else second, piece=1 << 20)
    assert [choice.delta.content for chunk in vllm.StreamChatCompletion(REQUEST, timeout=10)
            for choice in chunk.choices] == tokens
    received = []
    with pytest.raises(grpc.RpcError) as failure:
        for chunk in vllm.StreamChatCompletion(REQUEST, timeout=10):
            received.extend(choice.delta.content for choice in chunk.choices)
    assert received == ["u0"]
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "not valid JSON" in failure.value.details()
