"""Client keys: a call needs a known key (authorization: Bearer, or x-api-key), may use only its
key's models, and stays within its request rate, token rate and concurrent streams; over a limit
it gets RESOURCE_EXHAUSTED with a google.rpc.RetryInfo saying when to come back."""

import hashlib
import json
import threading
import time

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from vllmgateway.v1 import chat_pb2, models_pb2, service_pb2_grpc

KEYS = {"open": "sk-open-0123456789", "narrow": "sk-narrow-abcdef", "slow": "sk-slow-xyz", "frugal": "sk-frugal-1",
        "single": "sk-single-1"}


def chat(model="sim-model", max_tokens=4, tokens_per_second=None):
    request = chat_pb2.ChatCompletionRequest(model=model, max_tokens=max_tokens,
                                             messages=[chat_pb2.ChatMessage(role="user", text="hi")])
    if tokens_per_second:
        request.extra_body.update({"vllm_sim": {"tokens_per_second": tokens_per_second}})
    return request


@pytest.fixture(scope="module")
def keyed_gateway(sim, tmp_path_factory):
    from conftest import ServerProcess
    folder = tmp_path_factory.mktemp("keys")
    (folder / "single.key").write_text(KEYS["single"] + "\n")
    config = {
        "upstreams": [{"url": f"http://{sim.address}"}],
        "auth": {"keys": [
            {"id": "open", "sha256": hashlib.sha256(KEYS["open"].encode()).hexdigest()},
            {"id": "narrow", "key": "env.NARROW_KEY", "models": ["other-model"]},
            {"id": "slow", "key": KEYS["slow"], "requests_per_minute": 3},
            {"id": "frugal", "key": KEYS["frugal"], "tokens_per_minute": 60},
            {"id": "single", "key_file": str(folder / "single.key"), "max_concurrent_streams": 1},
        ]}}
    path = folder / "gateway.json"
    path.write_text(json.dumps(config))
    import os
    os.environ["NARROW_KEY"] = KEYS["narrow"]
    try:
        server = ServerProcess("vllm-grpc-gateway", ["--listen", "127.0.0.1:{port}", "--config", str(path)],
                               folder / "gateway.log")
    finally:
        del os.environ["NARROW_KEY"]
    yield server
    server.stop()


@pytest.fixture
def stub(keyed_gateway):
    with grpc.insecure_channel(keyed_gateway.address) as channel:
        yield service_pb2_grpc.VLLMServiceStub(channel)


def bearer(name):
    return [("authorization", f"Bearer {KEYS[name]}")]


def failure(call):
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value


def retry_delay(error):
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            info = error_details_pb2.RetryInfo()
            assert status.details[0].Unpack(info)
            return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    raise AssertionError("no RetryInfo")


def test_a_call_without_a_known_key_is_unauthenticated(stub, keyed_gateway):
    error = failure(lambda: stub.CreateChatCompletion(chat(), timeout=5))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "authorization: Bearer <key>" in error.details()
    error = failure(lambda: stub.CreateChatCompletion(chat(), metadata=[("authorization", "Bearer sk-wrong")],
                                                       timeout=5))
    assert (error.code(), error.details()) == (grpc.StatusCode.UNAUTHENTICATED,
                                               "the client key is not known to this gateway")
    error = failure(lambda: stub.ListModels(models_pb2.ListModelsRequest(), timeout=5))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert KEYS["open"] not in keyed_gateway.log()


def test_a_known_key_by_either_header(stub):
    assert stub.CreateChatCompletion(chat(), metadata=bearer("open"), timeout=5).usage.completion_tokens == 4
    assert stub.CreateChatCompletion(chat(), metadata=[("x-api-key", KEYS["open"])], timeout=5).choices
    assert list(stub.StreamChatCompletion(chat(), metadata=[("x-api-key", KEYS["single"])], timeout=5))


def test_each_call_on_one_connection_is_judged_by_its_own_key(stub):
    # The gateway remembers the key a connection proved; a different key on the same connection,
    # even one differing in its last character, must still be checked on its own.
    assert stub.CreateChatCompletion(chat(), metadata=bearer("open"), timeout=5).choices
    near_miss = KEYS["open"][:-1] + "8"
    error = failure(lambda: stub.CreateChatCompletion(chat(), metadata=[("x-api-key", near_miss)], timeout=5))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    error = failure(lambda: stub.CreateChatCompletion(chat(), metadata=bearer("narrow"), timeout=5))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert stub.CreateChatCompletion(chat(), metadata=bearer("open"), timeout=5).choices
    error = failure(lambda: stub.CreateChatCompletion(chat(), timeout=5))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_health_and_reflection_stay_open(keyed_gateway):
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    with grpc.insecure_channel(keyed_gateway.address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_a_model_the_key_may_not_use_is_permission_denied(stub):
    error = failure(lambda: stub.CreateChatCompletion(chat(), metadata=bearer("narrow"), timeout=5))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == "the client key narrow may not use the model `sim-model`; it may use: other-model"


def test_over_the_request_rate_with_retry_info(stub):
    for _ in range(3):
        stub.CreateChatCompletion(chat(), metadata=bearer("slow"), timeout=5)
    error = failure(lambda: stub.CreateChatCompletion(chat(), metadata=bearer("slow"), timeout=5))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details() == "the client key slow has made its 3 requests a minute"
    # One request comes back every 20 s.
    assert 15 < retry_delay(error) <= 20


def test_over_the_token_rate_once_the_usage_is_charged(stub):
    # 4 completion tokens plus the prompt's per call, against 60 a minute.
    used = 0
    while used < 60:
        reply = stub.CreateChatCompletion(chat(max_tokens=20), metadata=bearer("frugal"), timeout=5)
        used += reply.usage.total_tokens
    error = failure(lambda: stub.CreateChatCompletion(chat(), metadata=bearer("frugal"), timeout=5))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details() == "the client key frugal has used its 60 tokens a minute"
    assert 0 < retry_delay(error) <= 60


def test_over_the_concurrent_streams(stub):
    stream = stub.StreamChatCompletion(chat(max_tokens=50, tokens_per_second=20), metadata=bearer("single"),
                                       timeout=10)
    next(stream)
    error = failure(lambda: stub.CreateChatCompletion(chat(), metadata=bearer("single"), timeout=5))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details() == "the client key single already has 1 calls in flight, its limit"
    assert retry_delay(error) == 1
    stream.cancel()
    # The cancelled call's place is free again.
    deadline = time.monotonic() + 5
    while True:
        try:
            stub.CreateChatCompletion(chat(), metadata=bearer("single"), timeout=5)
            break
        except grpc.RpcError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_sighup_reloads_the_keys(sim, start_server, tmp_path):
    import signal
    path = tmp_path / "keys.json"

    def write(keys):
        path.write_text(json.dumps({"upstreams": [{"url": f"http://{sim.address}"}],
                                    "auth": {"keys": [{"id": name, "key": key} for name, key in keys]}}))
    write([("first", "sk-first-key")])
    gateway = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--config", str(path))
    with grpc.insecure_channel(gateway.address) as channel:
        stub = service_pb2_grpc.VLLMServiceStub(channel)
        assert stub.CreateChatCompletion(chat(), metadata=[("x-api-key", "sk-first-key")], timeout=5).choices
        write([("second", "sk-second-key")])
        gateway.signal(signal.SIGHUP)
        assert gateway.wait_for_log("client keys reloaded")
        error = failure(lambda: stub.CreateChatCompletion(chat(), metadata=[("x-api-key", "sk-first-key")],
                                                           timeout=5))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert stub.CreateChatCompletion(chat(), metadata=[("x-api-key", "sk-second-key")], timeout=5).choices
