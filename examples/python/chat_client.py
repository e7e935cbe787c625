"""A Python client of vllm-grpc-gateway (grpcio, blocking): streams a chat answer, cancels a
stream half way, sets a deadline, and reads the google.rpc.ErrorInfo of an error.

    python examples/python/chat_client.py ADDRESS [stream|cancel|deadline|not-found] [MODEL]

The stubs are generated as in README.md ("Streaming chat from Python"); google.rpc comes from
googleapis-common-protos.
"""

import sys

import grpc
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2, status_pb2

from vllmgateway.v1 import chat_pb2, service_pb2_grpc


def chat_request(model, max_tokens, tokens_per_second=None):
    request = chat_pb2.ChatCompletionRequest(model=model, max_tokens=max_tokens,
                                             messages=[chat_pb2.ChatMessage(role="user", text="Tell me about HTTP/2")])
    if tokens_per_second:
        # extra_body goes into vLLM's JSON as it is; "vllm_sim" paces the simulator's tokens.
        extra = struct_pb2.Struct()
        extra.update({"vllm_sim": {"tokens_per_second": tokens_per_second}})
        request.extra_body.CopyFrom(extra)
    return request


def print_chunk(chunk):
    for choice in chunk.choices:
        print(choice.delta.content, end="", flush=True)
    if chunk.HasField("usage"):
        print(f"\n[usage: {chunk.usage.prompt_tokens} prompt + {chunk.usage.completion_tokens} completion tokens]")


def error_infos(error):
    """The google.rpc.ErrorInfo details of a failed call, from its grpc-status-details-bin trailer."""
    infos = []
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    infos.append(info)
    return infos


def stream(vllm, model):
    for chunk in vllm.StreamChatCompletion(chat_request(model, 32), timeout=60):
        print_chunk(chunk)
    print("status: OK")
    return 0


def cancel(vllm, model):
    """Asks for 100 tokens at 20 a second, reads 10 chunks, then cancels the call: the gateway
    aborts the generation in vLLM."""
    call = vllm.StreamChatCompletion(chat_request(model, 100, tokens_per_second=20))
    for _ in range(10):
        chunk = next(call, None)
        if chunk is None:
            print("error: the stream ended before it was cancelled", file=sys.stderr)
            return 1
        print_chunk(chunk)
    call.cancel()
    print("\ncancelled after 10 chunks")
    try:
        for _ in call:
            pass
    except grpc.RpcError as error:
        print(f"status: {error.code().name}")
        return 0 if error.code() == grpc.StatusCode.CANCELLED else 1
    print("status: OK")
    return 1


def deadline(vllm, model):
    """Gives a slow stream 200 ms: it ends DEADLINE_EXCEEDED."""
    try:
        for chunk in vllm.StreamChatCompletion(chat_request(model, 100, tokens_per_second=20), timeout=0.2):
            print_chunk(chunk)
    except grpc.RpcError as error:
        print(f"\nstatus: {error.code().name}")
        return 0 if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED else 1
    print("\nstatus: OK")
    return 1


def not_found(vllm, model):
    """Asks for a model nobody serves and prints the google.rpc.ErrorInfo the gateway sends."""
    try:
        for _ in vllm.StreamChatCompletion(chat_request("no-such-model", 8), timeout=30):
            pass
    except grpc.RpcError as error:
        print(f"status: {error.code().name}\nmessage: {error.details()}")
        infos = error_infos(error)
        for info in infos:
            print(f"error_info: reason={info.reason} domain={info.domain}")
            for key in sorted(info.metadata):
                print(f"metadata: {key}={info.metadata[key]}")
        if error.code() != grpc.StatusCode.NOT_FOUND:
            return 1
        if not infos:
            print("error: no google.rpc.ErrorInfo in grpc-status-details-bin", file=sys.stderr)
            return 1
        return 0
    print("status: OK")
    return 1


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: chat_client.py ADDRESS [stream|cancel|deadline|not-found] [MODEL]")
    address = sys.argv[1]
    mode = sys.argv[2] if len(sys.argv) > 2 else "stream"
    model = sys.argv[3] if len(sys.argv) > 3 else "sim-model"
    modes = {"stream": stream, "cancel": cancel, "deadline": deadline, "not-found": not_found}
    if mode not in modes:
        sys.exit(f"unknown mode {mode!r}")
    with grpc.insecure_channel(address) as channel:
        try:
            return modes[mode](service_pb2_grpc.VLLMServiceStub(channel), model)
        except grpc.RpcError as error:
            print(f"error: {error.code().name}: {error.details()}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
