"""A cancelled call costs vLLM nothing more (issue 9): for each way a call can end early (the client
cancels it, its deadline expires, the client's connection to the gateway dies) a long streaming
chat is ended while tokens flow, and vLLM's own Prometheus /metrics show that it produces no token
for it later than 100 ms after that moment, and that the request leaves its running batch.

What /metrics can show, read from vLLM 0.32's source (v1/engine/async_llm.py output_handler,
v1/engine/output_processor.py, v1/engine/core.py, v1/core/sched/scheduler.py, v1/metrics/loggers.py):

* vllm:generation_tokens_total is incremented by the API server's output handler once per batch of
  EngineCoreOutputs, that is once per engine step, as soon as the step's outputs arrive over ZMQ:
  no stats interval applies (the 10 s interval is the log line's only). But it counts only tokens
  of requests the output processor still knows, and an abort removes the request there first
  ("Ignore output for already-aborted request"): on its own it shows the API server letting go of
  the request, not the engine ceasing to compute for it.
* vllm:iteration_tokens_total_count (the count of the iteration-tokens histogram) goes up by one
  for every batch of outputs the engine sends that holds any request's output, including outputs of
  a request the API server has already aborted (IterationStats is made when `num_outputs` is non
  zero, before the outputs are looked at). With a single request on the server, each increase is
  an engine step that computed a token for it, and its last increase is when the engine last did.
* vllm:num_requests_running comes from the SchedulerStats the engine attaches to each step's
  outputs. The engine takes an abort between steps, or during a step just before the step's
  results are applied (EngineCore.step: `_process_aborts_queue`), so a step already running when
  the abort arrives is finished and its token thrown away; the stats of that step, or of the empty
  step that follows, say 0 running. On CPU vLLM schedules synchronously (platforms/cpu.py turns
  async scheduling off), so no second step is queued behind it. Its return to 0 is asserted and
  its time recorded (running_zero_ms) but not held to 100 ms: it includes the rest of the step
  that was running when the abort came, and on this shared 2-core machine, with vLLM at nice 5 next
  to other engineers' builds, one step was seen to take up to ~240 ms, as long with a plain HTTP
  client closing its connection to vLLM as through the gateway (the reference case records that).

So `stop_ms`, the asserted figure, is when vLLM last produced a token for the call: the first
/metrics sample in which both counters have their final values, counted from the call's end. The
stop happened before that sample was rendered, so at the latest when its reply arrived (stop_ms is
that upper bound, or 0 when no token came after the end), and after the sample before it was
requested (stop_ms_lower). Samples are taken back to back with a 10 ms pause. Only one request
runs on the chat server during a case, so the server-wide counters are this request's. An attempt
counts only if vLLM was generating at MIN_RATE or more when the call ended (else a late stop could
hide between two tokens) and had not finished; others are made again. Each case appends a JSON
line to .build/cancel-proof.jsonl.
"""

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import urlparse

import grpc
import pytest

from gateway_harness import ROOT, servers

from vllmgateway.v1 import chat_pb2, models_pb2, service_pb2_grpc  # noqa: E402

CHAT = os.environ["REAL_VLLM_CHAT"]
PROOF = ROOT / ".build" / "cancel-proof.jsonl"
LIMIT_MS = 100.0
AFTER_S = 1.5          # how long /metrics is watched after the call ended
ATTEMPTS = 6           # an attempt whose stream was not generating when it ended proves nothing
LIVE_S = 0.5           # "generating when the call ended": running, and the counter rose in the LIVE_S before
PAUSE_S = 0.01         # between two samples, to leave vLLM's event loop time for its own work
# A stop within LIMIT_MS shows only if vLLM, not stopping, would have produced tokens in that time:
# at 20 tokens/s and more, two in 100 ms. When other work on the machine starves vLLM below that,
# the attempt proves nothing and is made again.
MIN_RATE = 20.0
PROMPT = "Tell me a long story."
METRIC = re.compile(r"^vllm:(generation_tokens_total|iteration_tokens_total_count|num_requests_running|"
                    r"num_requests_waiting)\{[^}]*\} (\S+)$", re.M)


class Sample:
    __slots__ = ("sent", "received", "generated", "steps", "running", "waiting")

    def __init__(self, sent, received, values):
        self.sent, self.received = sent, received
        self.generated = values["generation_tokens_total"]
        self.steps = values["iteration_tokens_total_count"]
        self.running = values["num_requests_running"]
        self.waiting = values["num_requests_waiting"]


class Metrics:
    """vLLM's /metrics over one keep-alive connection."""

    def __init__(self, base):
        url = urlparse(base)
        self.host, self.port = url.hostname, url.port
        self.connection = None

    def sample(self):
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
            sent = time.monotonic()
            try:
                self.connection.request("GET", "/metrics")
                body = self.connection.getresponse().read().decode()
            except (OSError, http.client.HTTPException):
                self.connection.close()
                self.connection = None
                if attempt == 2:
                    raise
                continue
            received = time.monotonic()
            values = {}
            for name, value in METRIC.findall(body):
                values[name] = values.get(name, 0.0) + float(value)
            return Sample(sent, received, values)

    def close(self):
        if self.connection is not None:
            self.connection.close()


class Sampler(threading.Thread):
    """Samples /metrics back to back until stopped."""

    def __init__(self, base):
        super().__init__(daemon=True)
        self.metrics = Metrics(base)
        self.samples = []
        self.stopping = threading.Event()
        self.error = None

    def run(self):
        try:
            while not self.stopping.is_set():
                self.samples.append(self.metrics.sample())
                time.sleep(PAUSE_S)
        except Exception as error:  # reported by finish()
            self.error = error
        finally:
            self.metrics.close()

    def wait_generating(self, baseline, timeout=60):
        """Until a sample shows the request running and 8 tokens of it counted."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.error:
            if self.samples and self.samples[-1].running == 1 and self.samples[-1].generated >= baseline + 8:
                return
            time.sleep(0.001)
        pytest.fail(f"vLLM's /metrics never showed the stream generating ({self.error or 'timed out'})")

    def finish(self):
        self.stopping.set()
        self.join(timeout=30)
        if self.error:
            raise self.error
        return self.samples


def wait_until_idle(timeout=60):
    """No request running or waiting and the counters still for 200 ms: nothing else is generating."""
    metrics = Metrics(CHAT)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            first = metrics.sample()
            time.sleep(0.2)
            second = metrics.sample()
            if (first.running == second.running == 0 and first.waiting == second.waiting == 0
                    and (first.generated, first.steps) == (second.generated, second.steps)):
                return second
        pytest.fail(f"vLLM did not become idle in {timeout} s")
    finally:
        metrics.close()


class NotGenerating(Exception):
    """The attempt's stream was not generating (fast enough) when the call ended: it proves nothing
    either way. `finished`: True when it had already finished, False when it had not started
    generating yet, None when it generated too slowly."""

    def __init__(self, message, finished):
        super().__init__(message)
        self.finished = finished


def ms(seconds):
    return round(seconds * 1000, 1)


def analyse(samples, ended, baseline, max_tokens):
    """When, relative to `ended` (monotonic seconds), vLLM stopped generating: see the module's doc."""
    last = samples[-1]
    assert last.running == 0 and last.waiting == 0, \
        f"vLLM still has requests {AFTER_S} s after the call ended (running {last.running}, waiting {last.waiting})"
    generated = last.generated - baseline.generated
    if generated >= max_tokens:
        raise NotGenerating(f"vLLM generated all {max_tokens} tokens: the stream had finished on its own",
                            finished=True)
    before = [s for s in samples if s.received <= ended]
    earlier = [s.generated for s in before if s.received < ended - LIVE_S] or [baseline.generated]
    if not before or before[-1].running != 1 or before[-1].generated <= earlier[-1]:
        raise NotGenerating(f"vLLM was not generating in the {ms(LIVE_S)} ms before the call ended "
                            f"(running {before[-1].running if before else '?'}, "
                            f"{before[-1].generated - earlier[-1] if before else 0:.0f} tokens)", finished=False)
    flowing = [s for s in before if s.running == 1 and s.generated > baseline.generated]
    rate = ((before[-1].generated - flowing[0].generated) / (before[-1].received - flowing[0].received)
            if len(flowing) > 1 and before[-1].received > flowing[0].received else 0.0)
    if rate < MIN_RATE:
        raise NotGenerating(f"vLLM generated only {rate:.0f} tokens/s before the call ended: too slowly for a "
                            f"{LIMIT_MS:.0f} ms stop to show", finished=None)
    final = (last.generated, last.steps)
    stopped = next(i for i, s in enumerate(samples) if (s.generated, s.steps) == final)
    counter_stopped = next(i for i, s in enumerate(samples) if s.generated == last.generated)
    steps_stopped = next(i for i, s in enumerate(samples) if s.steps == last.steps)
    released = next(i for i, s in enumerate(samples) if s.running == 0 and s.sent > before[-1].sent)
    assert all(s.running == 0 for s in samples[released:]), "vLLM ran a request again after it had let it go"
    intervals = sorted(b.sent - a.sent for a, b in zip(samples, samples[1:]))
    return {
        # At the latest: vLLM had stopped when this sample was rendered, before its reply arrived.
        "stop_ms": max(0.0, ms(samples[stopped].received - ended)),
        # At the earliest: it had not stopped when the sample before was requested.
        "stop_ms_lower": max(0.0, ms(samples[max(stopped - 1, 0)].sent - ended)),
        "counter_stop_ms": max(0.0, ms(samples[counter_stopped].received - ended)),
        "steps_stop_ms": max(0.0, ms(samples[steps_stopped].received - ended)),
        "running_zero_ms": ms(samples[released].received - ended),
        "tokens_after_end": int(last.generated - before[-1].generated),
        "steps_after_end": int(last.steps - before[-1].steps),
        "tokens_per_s_before_end": round(rate),
        "tokens_generated": int(generated),
        "max_tokens": max_tokens,
        "sample_interval_ms": ms(intervals[len(intervals) // 2]),
    }


def measure(case, end_a_call, max_tokens):
    """Runs `end_a_call(previous, generating)` under /metrics sampling: it starts a long stream, waits
    for tokens (`generating()` returns once /metrics shows them), ends the call and returns the
    monotonic time it did; `previous` is the previous attempt's NotGenerating, or None. Records
    and returns what analyse() found."""
    skipped = []
    previous = None
    for attempt in range(1, ATTEMPTS + 1):
        baseline = wait_until_idle()
        sampler = Sampler(CHAT)
        sampler.start()
        try:
            try:
                ended = end_a_call(previous, lambda: sampler.wait_generating(baseline.generated))
                time.sleep(max(0.0, ended + AFTER_S - time.monotonic()))
            finally:
                samples = sampler.finish()
            result = analyse(samples, ended, baseline, max_tokens)
        except NotGenerating as why:
            skipped.append(str(why))
            previous = why
            print(f"{case}: attempt {attempt} proves nothing: {why}")
            continue
        result = {"case": case, "attempt": attempt, **result}
        print(f"{case}: vLLM generated its last token for the call {result['stop_ms']} ms after the call ended "
              f"at the latest; the request left its batch after {result['running_zero_ms']} ms; {json.dumps(result)}")
        PROOF.parent.mkdir(parents=True, exist_ok=True)
        with PROOF.open("a") as proof:
            proof.write(json.dumps({**result, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n")
        return result
    pytest.fail(f"{case}: none of {ATTEMPTS} attempts had vLLM generating, at {MIN_RATE:.0f} tokens/s or more, "
                f"when the call ended, so none can show a {LIMIT_MS:.0f} ms stop: {skipped}")


def prove(case, end_a_call, max_tokens):
    result = measure(case, end_a_call, max_tokens)
    assert result["stop_ms"] <= LIMIT_MS, \
        f"{case}: vLLM went on generating for up to {result['stop_ms']} ms after the call ended: {result}"
    return result


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    log = tmp_path_factory.mktemp("cancel-proof") / "gateway.log"
    server = servers.ServerProcess("vllm-grpc-gateway", ["--listen", "127.0.0.1:{port}", "--upstream", CHAT], log)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stub(gateway):
    channel = grpc.insecure_channel(gateway.address)
    yield service_pb2_grpc.VLLMServiceStub(channel)
    channel.close()


def long_chat(max_tokens):
    return chat_pb2.ChatCompletionRequest(model="tiny-llama", messages=[chat_pb2.ChatMessage(role="user", text=PROMPT)],
                                          max_tokens=max_tokens, temperature=0.0, ignore_eos=True)


@pytest.fixture(scope="module")
def calibration(stub):
    """The longest stream the chat model allows (ignore_eos: the random-weight model would otherwise
    stop whenever it samples its EOS token), and how long it takes here, timed after a warm-up."""
    [model] = stub.ListModels(models_pb2.ListModelsRequest(), timeout=30).data
    warm_up = list(stub.StreamChatCompletion(long_chat(32), timeout=120))
    max_tokens = model.max_model_len - warm_up[-1].usage.prompt_tokens
    started = time.monotonic()
    first = None
    for chunk in stub.StreamChatCompletion(long_chat(max_tokens), timeout=120):
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.monotonic() - started
    total = time.monotonic() - started
    print(f"calibration: {max_tokens} tokens, the first after {first * 1000:.0f} ms, all after {total * 1000:.0f} ms")
    return {"max_tokens": max_tokens, "first_token_s": first, "total_s": total}


def test_client_cancel_stops_vllm_within_100ms(stub, calibration):
    max_tokens = calibration["max_tokens"]

    def end_a_call(previous, generating):
        stream = stub.StreamChatCompletion(long_chat(max_tokens), timeout=120)
        next(stream)
        generating()
        ended = time.monotonic()
        stream.cancel()
        return ended

    prove("client cancel", end_a_call, max_tokens)


def test_deadline_stops_vllm_within_100ms(stub, calibration):
    max_tokens = calibration["max_tokens"]
    # The deadline falls a third of the way into the generation as the calibration timed it. When an
    # attempt's stream had already finished by then (the machine got faster) the next one's deadline
    # is halved; when it had not started generating yet (slower), doubled.
    first, total = calibration["first_token_s"], calibration["total_s"]
    timeouts = []

    def end_a_call(previous, generating):
        if previous is None:
            timeout = first + (total - first) / 3
        else:
            timeout = timeouts[-1] * {True: 0.5, False: 2.0, None: 1.0}[previous.finished]
        timeouts.append(timeout)
        started = time.monotonic()
        try:
            for _ in stub.StreamChatCompletion(long_chat(max_tokens), timeout=timeout):
                pass
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED, error
        else:
            time.sleep(AFTER_S)
            raise NotGenerating(f"the stream finished within its {timeout * 1000:.0f} ms deadline", finished=True)
        # The deadline was set when the call started, a little after `started`: counting from
        # `started + timeout` can only make the stop look later than it was.
        return started + timeout

    prove("deadline", end_a_call, max_tokens)
    print(f"deadline: timeouts tried {[round(t * 1000) for t in timeouts]} ms")


CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
import grpc
from vllmgateway.v1 import chat_pb2, service_pb2_grpc
stub = service_pb2_grpc.VLLMServiceStub(grpc.insecure_channel(sys.argv[2]))
request = chat_pb2.ChatCompletionRequest(model="tiny-llama",
                                         messages=[chat_pb2.ChatMessage(role="user", text=sys.argv[4])],
                                         max_tokens=int(sys.argv[3]), temperature=0.0, ignore_eos=True)
flowing = False
for chunk in stub.StreamChatCompletion(request, timeout=120):
    if not flowing:
        print("flowing", flush=True)
        flowing = True
print("finished", flush=True)
"""


def test_connection_loss_stops_vllm_within_100ms(gateway, calibration):
    """The client process is killed: the kernel closes its TCP connection to the gateway, with no
    RST_STREAM or GOAWAY before."""
    max_tokens = calibration["max_tokens"]

    def end_a_call(previous, generating):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(ROOT / "tests" / "python" / "generated"),
                                  gateway.address, str(max_tokens), PROMPT], stdout=subprocess.PIPE, text=True)
        try:
            line = child.stdout.readline().strip()
            assert line == "flowing", f"the client process said {line!r}, not that the stream had begun"
            generating()
            ended = time.monotonic()
            os.kill(child.pid, signal.SIGKILL)
            return ended
        finally:
            child.kill()
            child.wait()
            child.stdout.close()

    prove("connection loss", end_a_call, max_tokens)


def test_reference_http_client_closes_its_connection(calibration):
    """No gateway: a plain HTTP client streams from vLLM and closes its connection. vLLM's own floor
    under the machine's present load, recorded next to the three cases above to read them by."""
    max_tokens = calibration["max_tokens"]
    url = urlparse(CHAT)

    def end_a_call(previous, generating):
        body = json.dumps({"model": "tiny-llama", "messages": [{"role": "user", "content": PROMPT}],
                           "max_tokens": max_tokens, "temperature": 0.0, "ignore_eos": True,
                           "stream": True}).encode()
        with socket.create_connection((url.hostname, url.port), timeout=60) as connection:
            connection.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: vllm\r\nContent-Type: application/json\r\n"
                               b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            received = b""
            while b"data: {" not in received:
                data = connection.recv(65536)
                assert data, f"vLLM closed the stream: {received[-500:]!r}"
                received += data
            generating()
            ended = time.monotonic()
        return ended

    result = measure("reference: HTTP client closes its connection to vLLM, no gateway", end_a_call, max_tokens)
    assert result["running_zero_ms"] <= AFTER_S * 1000
