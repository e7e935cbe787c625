"""Helpers for the hostile-client tests: a gateway with short timeouts, a raw HTTP/2 client that
finishes the handshake, the gateway's RSS and descriptors, a well-behaved client measuring its
latency meanwhile, and the report those tests add a row to."""

import json
import os
import re
import socket
import struct
import threading
import time
import urllib.request
from pathlib import Path

import grpc

from conftest import ROOT

REPORT = ROOT / ".build" / "hostile-report.jsonl"
# How much longer than usual waits may take: tools/sanitize thread runs a gateway many times
# slower than a plain build. The checks stay the same; only the patience grows.
TIME_ALLOWANCE = float(os.environ.get("TEST_TIME_ALLOWANCE", "1"))
STREAM_CHAT = "/vllmgateway.v1.VLLMService/StreamChatCompletion"

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ENHANCE_YOUR_CALM = 0xB


def frame(type_, flags, stream_id, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([type_, flags]) + struct.pack(">I", stream_id) + payload


def settings_frame(settings=(), ack=False):
    payload = b"".join(struct.pack(">HI", key, value) for key, value in settings)
    return frame(0x4, 0x1 if ack else 0, 0, payload)


def window_update(stream_id, increment):
    return frame(0x8, 0, stream_id, struct.pack(">I", increment))


def rss_kib(pid):
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1))


def open_descriptors(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def metrics(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def chat_request(max_tokens=200, tokens_per_second=None, text="hello"):
    from vllmgateway.v1 import chat_pb2
    request = chat_pb2.ChatCompletionRequest(model="sim-model", max_tokens=max_tokens,
                                             messages=[chat_pb2.ChatMessage(role="user", text=text)])
    if tokens_per_second is not None:
        request.extra_body.update({"vllm_sim": {"tokens_per_second": tokens_per_second}})
    return request


def grpc_message(message):
    body = message.SerializeToString()
    return struct.pack(">BI", 0, len(body)) + body


class WellBehavedClient:
    """A grpcio client on its own connection, making short streamed chats in a loop while a test
    attacks the gateway; it records each call's latency and status."""

    def __init__(self, address):
        from vllmgateway.v1 import service_pb2_grpc
        self.channel = grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        self.stub = service_pb2_grpc.VLLMServiceStub(self.channel)
        self.latencies = []
        self.failures = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                chunks = list(self.stub.StreamChatCompletion(chat_request(max_tokens=8),
                                                             timeout=10 * TIME_ALLOWANCE))
                assert chunks, "no chunk"
                self.latencies.append(time.monotonic() - started)
            except Exception as error:  # recorded, and the test asserts there were none
                self.failures.append(repr(error))
            self._stop.wait(0.02)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=15)
        self.channel.close()

    def p99_ms(self):
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1)


def report(scenario, outcome, gateway_pid, rss_before_kib, bystander, **extra):
    """Adds one row to the hostile-client report (the closing note's table)."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    row = {"scenario": scenario, "outcome": outcome, "rss_before_mib": round(rss_before_kib / 1024, 1),
           "rss_after_mib": round(rss_kib(gateway_pid) / 1024, 1),
           "bystander_calls": len(bystander.latencies) if bystander else None,
           "bystander_p99_ms": bystander.p99_ms() if bystander else None,
           "bystander_failures": len(bystander.failures) if bystander else None, **extra}
    with open(REPORT, "a") as out:
        out.write(json.dumps(row) + "\n")


class RawConnection:
    """A socket that speaks HTTP/2 by hand: the handshake, then whatever frames a test writes.
    `read_until_closed` collects the frames the server sends until it closes the connection."""

    def __init__(self, port, handshake=True, settings=()):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.received = b""
        if handshake:
            self.sock.sendall(PREFACE + settings_frame(settings))
            # Acknowledge the server's SETTINGS once it arrives.
            self._read_frames(until=lambda frames: any(t == 0x4 and not f & 1 for t, f, _, _ in frames))
            self.sock.sendall(settings_frame(ack=True))

    def send(self, data):
        self.sock.sendall(data)

    def _receive_until(self, predicate, timeout):
        """Receives until `predicate()` holds, the server closes, or `timeout` passes; returns
        whether the server closed."""
        deadline = time.monotonic() + timeout
        while not predicate() and time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return True
            if not data:
                return True
            self.received += data
        return False

    def _read_frames(self, until, timeout=10.0):
        self._receive_until(lambda: until(self.frames()), timeout)
        return self.frames()

    def frames(self):
        out = []
        data = self.received
        while len(data) >= 9:
            length = int.from_bytes(data[:3], "big")
            if len(data) < 9 + length:
                break
            out.append((data[3], data[4], int.from_bytes(data[5:9], "big") & 0x7FFFFFFF, data[9:9 + length]))
            data = data[9 + length:]
        return out

    def read_until(self, predicate, timeout=10.0):
        """Reads until `predicate()` holds or the server closes; returns whether it held."""
        self._receive_until(predicate, timeout)
        return predicate()

    def read_until_closed(self, timeout=10.0):
        """Reads until the server closes; returns (closed, seconds taken)."""
        started = time.monotonic()
        closed = self._receive_until(lambda: False, timeout)
        return closed, time.monotonic() - started

    def goaway(self):
        """(error code, debug data) of the server's last GOAWAY, or None."""
        for type_, _, _, payload in reversed(self.frames()):
            if type_ == 0x7:
                return int.from_bytes(payload[4:8], "big"), payload[8:]
        return None

    def resets(self):
        return [(stream_id, int.from_bytes(payload[:4], "big")) for type_, _, stream_id, payload in self.frames()
                if type_ == 0x3]

    def close(self):
        self.sock.close()


def start_gateway(start_server, sim, *flags, metrics_port=None, preexec_fn=None):
    args = ["--listen", "127.0.0.1:{port}", "--upstream", f"http://{sim.address}", "--log-level", "info",
            "--threads", "2"]
    if metrics_port:
        args += ["--metrics-listen", f"127.0.0.1:{metrics_port}"]
    return start_server("vllm-grpc-gateway", *(args + list(flags)), preexec_fn=preexec_fn)

