"""Streams a chat completion through vllm-grpc-gateway.

    python -m grpc_tools.protoc -I proto -I <grpc_tools>/_proto --python_out=. --grpc_python_out=. proto/vllmgateway/v1/*.proto
    python examples/python/stream_chat.py localhost:50051 "Tell me about HTTP/2"
"""

import sys

import grpc

from vllmgateway.v1 import chat_pb2, service_pb2_grpc

address = sys.argv[1] if len(sys.argv) > 1 else "localhost:50051"
prompt = sys.argv[2] if len(sys.argv) > 2 else "Hello!"
vllm = service_pb2_grpc.VLLMServiceStub(grpc.insecure_channel(address))
request = chat_pb2.ChatCompletionRequest(model="sim-model", max_tokens=64,
                                         messages=[chat_pb2.ChatMessage(role="user", text=prompt)])
try:
    for chunk in vllm.StreamChatCompletion(request, timeout=60):
        for choice in chunk.choices:
            print(choice.delta.content, end="", flush=True)
        if chunk.HasField("usage"):
            print(f"\n[{chunk.usage.prompt_tokens} prompt + {chunk.usage.completion_tokens} generated tokens]")
except grpc.RpcError as error:
    sys.exit(f"{error.code().name}: {error.details()}")
