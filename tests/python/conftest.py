"""Shared fixtures: stubs generated from the .proto files as a user would, and the real
executables started on free ports."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GENERATED = Path(__file__).resolve().parent / "generated"
GRPC_PROTOS = Path("/usr/share/grpc-proto")
BIN_DIR = Path(os.environ.get("GATEWAY_BIN_DIR", ROOT / ".build" / "debug"))
# tools/sanitize instruments the servers under test, not the simulator playing vLLM: an
# instrumented vllm-sim is too slow on two cores to play a thousand streams.
SIM_BIN_DIR = Path(os.environ.get("SIM_BIN_DIR", BIN_DIR))


def _generate_stubs():
    """Generates Python stubs with grpcio-tools. grpc.testing and grpc.reflection.v1 would clash
    with the installed `grpc` package, so their files are compiled under other directory names;
    the proto packages, and so the method paths on the wire, stay the same."""
    from grpc_tools import protoc

    if GENERATED.exists():
        shutil.rmtree(GENERATED)
    sources = GENERATED / "_proto"
    for name in ("test", "messages", "empty"):
        text = (GRPC_PROTOS / "grpc" / "testing" / f"{name}.proto").read_text()
        target = sources / "grpc_testing" / f"{name}.proto"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text.replace('import "grpc/testing/', 'import "grpc_testing/'))
    reflection = sources / "reflection_v1" / "reflection.proto"
    reflection.parent.mkdir(parents=True, exist_ok=True)
    reflection.write_text((GRPC_PROTOS / "grpc" / "reflection" / "v1" / "reflection.proto").read_text())
    files = ["grpc_testing/test.proto", "grpc_testing/messages.proto", "grpc_testing/empty.proto",
             "reflection_v1/reflection.proto"]
    args = ["protoc", f"-I{sources}", f"--python_out={GENERATED}", f"--grpc_python_out={GENERATED}"] + files
    if protoc.main(args) != 0:
        raise RuntimeError("grpc_tools.protoc failed on the interop protos")
    own = [str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto").rglob("*.proto")]
    well_known = Path(protoc.__file__).resolve().parent / "_proto"  # google/protobuf/*.proto
    args = ["protoc", f"-I{ROOT / 'proto'}", f"-I{well_known}", f"--python_out={GENERATED}",
            f"--grpc_python_out={GENERATED}"] + own
    if protoc.main(args) != 0:
        raise RuntimeError("grpc_tools.protoc failed on proto/")


_generate_stubs()
sys.path.insert(0, str(GENERATED))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A server executable running on a free port, its log captured to a file."""

    def __init__(self, executable, args, log_path, preexec_fn=None, port=None, env=None):
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "w")
        folder = SIM_BIN_DIR if executable == "vllm-sim" else BIN_DIR
        command = [str(folder / executable)] + [a.format(port=self.port) for a in args]
        environment = None if env is None else {**os.environ, **env}
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=preexec_fn,
                                        env=environment)
        self._wait_until_listening()

    def _wait_until_listening(self):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early: {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not start listening: {self.log()}")

    def log(self):
        self._log.flush()
        return Path(self.log_path).read_text()

    def wait_for_log(self, text, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return True
            time.sleep(0.05)
        return False

    def signal(self, number=signal.SIGTERM):
        self.process.send_signal(number)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def assert_alive(self):
        assert self.process.poll() is None, f"server died: {self.log()}"


@pytest.fixture
def start_server(tmp_path):
    """Starts an executable with extra arguments; `{port}` in them is replaced by its port."""
    started = []

    def start(executable, *args, preexec_fn=None, env=None):
        server = ServerProcess(executable, list(args), tmp_path / f"{executable}-{len(started)}.log",
                               preexec_fn=preexec_fn, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def interop(start_server):
    """The interop server with debug logs, so tests can see cancellations."""
    return start_server("grpc-interop-server", "--port", "{port}", "--host", "127.0.0.1", "--log-level", "debug")


@pytest.fixture(scope="module")
def shared_interop(tmp_path_factory):
    """One interop server for a whole module of tests that do not disturb it."""
    log = tmp_path_factory.mktemp("interop") / "server.log"
    server = ServerProcess("grpc-interop-server", ["--port", "{port}", "--host", "127.0.0.1", "--log-level", "debug"], log)
    yield server
    server.stop()


def http_json(url, body=None):
    """GET (or POST) a URL and decode its JSON answer."""
    import json
    import urllib.request
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST" if data else "GET"),
                                timeout=10) as answer:
        return json.loads(answer.read() or b"null")


class Simulator(ServerProcess):
    def stats(self):
        return http_json(f"http://{self.address}/stats")

    def reset(self):
        http_json(f"http://{self.address}/stats/reset", {})


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    log = tmp_path_factory.mktemp("sim") / "sim.log"
    server = Simulator("vllm-sim", ["--port", "{port}"], log)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(sim, tmp_path_factory):
    log = tmp_path_factory.mktemp("gateway") / "gateway.log"
    server = ServerProcess("vllm-grpc-gateway", ["--listen", "127.0.0.1:{port}", "--upstream",
                                                 f"http://{sim.address}", "--log-level", "debug"], log)
    yield server
    server.stop()


@pytest.fixture
def vllm(gateway):
    """A VLLMService stub on the gateway, as a user would make it."""
    import grpc
    from vllmgateway.v1 import service_pb2_grpc
    channel = grpc.insecure_channel(gateway.address)
    yield service_pb2_grpc.VLLMServiceStub(channel)
    channel.close()
