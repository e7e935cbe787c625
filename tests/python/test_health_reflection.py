"""The standard services every mesh endpoint has: grpc.health.v1.Health and server reflection
(v1 and v1alpha), checked with the official Python clients and with buf curl."""

import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2 as v1alpha_pb2
from grpc_reflection.v1alpha import reflection_pb2_grpc as v1alpha_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from reflection_v1 import reflection_pb2 as v1_pb2
from reflection_v1 import reflection_pb2_grpc as v1_grpc

SERVICES = {"grpc.testing.TestService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection"}


@pytest.fixture
def channel(shared_interop):
    channel = grpc.insecure_channel(shared_interop.address)
    yield channel
    channel.close()


def test_health_check_server_is_serving(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    assert stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING


def test_health_check_registered_service(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    response = stub.Check(health_pb2.HealthCheckRequest(service="grpc.testing.TestService"), timeout=5)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_health_check_unknown_service(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    with pytest.raises(grpc.RpcError) as error:
        stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_health_watch_reports_current_status(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    watch = stub.Watch(health_pb2.HealthCheckRequest(), timeout=5)
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
    unknown = stub.Watch(health_pb2.HealthCheckRequest(service="later.Service"), timeout=5)
    assert next(unknown).status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
    watch.cancel()
    unknown.cancel()


def test_health_watch_sees_not_serving_on_shutdown(start_server):
    server = start_server("grpc-interop-server", "--port", "{port}", "--shutdown-grace-period", "2")
    channel = grpc.insecure_channel(server.address)
    watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=10)
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
    server.signal()
    assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
    channel.close()


def reflection_pool(channel):
    return descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))


def test_reflection_v1alpha_lists_services(channel):
    database = ProtoReflectionDescriptorDatabase(channel)
    assert set(database.get_services()) == SERVICES


def test_reflection_v1alpha_resolves_every_service(channel):
    pool = reflection_pool(channel)
    test_service = pool.FindServiceByName("grpc.testing.TestService")
    assert [m.name for m in test_service.methods] == ["EmptyCall", "UnaryCall", "CacheableUnaryCall",
                                                      "StreamingOutputCall", "StreamingInputCall",
                                                      "FullDuplexCall", "HalfDuplexCall", "UnimplementedCall"]
    assert test_service.FindMethodByName("UnaryCall").input_type.full_name == "grpc.testing.SimpleRequest"
    health = pool.FindServiceByName("grpc.health.v1.Health")
    assert {m.name for m in health.methods} == {"Check", "Watch"}
    assert pool.FindMessageTypeByName("grpc.testing.SimpleRequest").fields_by_name["response_size"].number == 2
    assert pool.FindServiceByName("grpc.reflection.v1.ServerReflection") is not None


def v1_requests(*requests):
    return iter(requests)


def test_reflection_v1_all_request_kinds(channel):
    stub = v1_grpc.ServerReflectionStub(channel)
    responses = list(stub.ServerReflectionInfo(v1_requests(
        v1_pb2.ServerReflectionRequest(list_services=""),
        v1_pb2.ServerReflectionRequest(file_containing_symbol="grpc.testing.TestService.UnaryCall"),
        v1_pb2.ServerReflectionRequest(file_by_filename="grpc/health/v1/health.proto"),
        v1_pb2.ServerReflectionRequest(file_containing_symbol="no.such.Symbol"),
        v1_pb2.ServerReflectionRequest(all_extension_numbers_of_type="grpc.testing.SimpleRequest"),
        v1_pb2.ServerReflectionRequest(file_containing_extension=v1_pb2.ExtensionRequest(
            containing_type="grpc.testing.SimpleRequest", extension_number=100)),
        v1_pb2.ServerReflectionRequest(file_by_filename="missing.proto"),
    ), timeout=5))
    assert len(responses) == 7
    assert {s.name for s in responses[0].list_services_response.service} == SERVICES
    assert responses[0].original_request.HasField("list_services")

    files = [descriptor_pb2.FileDescriptorProto.FromString(b)
             for b in responses[1].file_descriptor_response.file_descriptor_proto]
    assert files[0].name == "grpc/testing/test.proto"
    assert {"grpc/testing/empty.proto", "grpc/testing/messages.proto"} <= {f.name for f in files}

    health = descriptor_pb2.FileDescriptorProto.FromString(responses[2].file_descriptor_response.file_descriptor_proto[0])
    assert health.package == "grpc.health.v1" and health.service[0].name == "Health"

    assert responses[3].error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
    assert responses[4].all_extension_numbers_response.base_type_name == "grpc.testing.SimpleRequest"
    assert list(responses[4].all_extension_numbers_response.extension_number) == []
    assert responses[5].error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
    assert responses[6].error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


def test_reflection_serves_the_gateway_api_with_optional_fields(channel):
    stub = v1_grpc.ServerReflectionStub(channel)
    [response] = list(stub.ServerReflectionInfo(v1_requests(
        v1_pb2.ServerReflectionRequest(file_by_filename="vllmgateway/v1/chat.proto")), timeout=5))
    files = [descriptor_pb2.FileDescriptorProto.FromString(b)
             for b in response.file_descriptor_response.file_descriptor_proto]
    assert [f.name for f in files][:1] == ["vllmgateway/v1/chat.proto"]
    assert "vllmgateway/v1/common.proto" in [f.name for f in files]
    request = [m for m in files[0].message_type if m.name == "ChatCompletionRequest"][0]
    temperature = [f for f in request.field if f.name == "temperature"][0]
    assert temperature.proto3_optional


def test_reflection_v1alpha_raw(channel):
    stub = v1alpha_grpc.ServerReflectionStub(channel)
    [response] = list(stub.ServerReflectionInfo(iter([v1alpha_pb2.ServerReflectionRequest(
        file_containing_symbol="grpc.health.v1.HealthCheckResponse.ServingStatus")]), timeout=5))
    assert response.file_descriptor_response.file_descriptor_proto


def test_reflection_malformed_request(channel):
    call = channel.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
    with pytest.raises(grpc.RpcError) as error:
        list(call(iter([b"\xff\xff\xff"]), timeout=5))
    assert error.value.code() == grpc.StatusCode.INTERNAL


BUF = str(Path(sys.executable).parent / "buf")  # from PyPI's buf-bin, in the test venv


def test_buf_curl_lists_services_and_calls_through_reflection(shared_interop):
    listed = subprocess.run([BUF, "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-services",
                             f"http://{shared_interop.address}"], capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    assert set(listed.stdout.split()) == SERVICES
    called = subprocess.run([BUF, "curl", "--protocol", "grpc", "--http2-prior-knowledge", "-d", '{"response_size": 3}',
                             f"http://{shared_interop.address}/grpc.testing.TestService/UnaryCall"],
                            capture_output=True, text=True, timeout=30)
    assert called.returncode == 0, called.stderr
    assert '"body": "AAAA"' in called.stdout
