// A C++ client of vllm-grpc-gateway: streams a chat answer, cancels a stream half way, sets a
// deadline, and reads the google.rpc.ErrorInfo of an error. Build it with ./build.sh (Debian's
// libgrpc++-dev and protobuf-compiler-grpc).
//
//   chat-client ADDRESS [stream|cancel|deadline|not-found] [MODEL]

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "rpc_status.pb.h"
#include "vllmgateway/v1/service.grpc.pb.h"

namespace v1 = vllmgateway::v1;

namespace {

v1::ChatCompletionRequest ChatRequest(const std::string& model, int max_tokens, double tokens_per_second) {
  v1::ChatCompletionRequest request;
  request.set_model(model);
  request.set_max_tokens(max_tokens);
  v1::ChatMessage* message = request.add_messages();
  message->set_role("user");
  message->set_text("Tell me about HTTP/2");
  if (tokens_per_second > 0) {
    // extra_body goes into vLLM's JSON as it is; "vllm_sim" paces the simulator's tokens.
    google::protobuf::Struct* sim =
        (*request.mutable_extra_body()->mutable_fields())["vllm_sim"].mutable_struct_value();
    (*sim->mutable_fields())["tokens_per_second"].set_number_value(tokens_per_second);
  }
  return request;
}

void PrintChunk(const v1::ChatCompletionChunk& chunk) {
  for (const v1::ChatChunkChoice& choice : chunk.choices()) std::cout << choice.delta().content();
  if (chunk.has_usage()) {
    std::cout << "\n[usage: " << chunk.usage().prompt_tokens() << " prompt + "
              << chunk.usage().completion_tokens() << " completion tokens]\n";
  }
  std::cout.flush();
}

std::string CodeName(grpc::StatusCode code) {
  static const std::map<grpc::StatusCode, std::string> names = {
      {grpc::StatusCode::OK, "OK"},
      {grpc::StatusCode::CANCELLED, "CANCELLED"},
      {grpc::StatusCode::UNKNOWN, "UNKNOWN"},
      {grpc::StatusCode::INVALID_ARGUMENT, "INVALID_ARGUMENT"},
      {grpc::StatusCode::DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED"},
      {grpc::StatusCode::NOT_FOUND, "NOT_FOUND"},
      {grpc::StatusCode::PERMISSION_DENIED, "PERMISSION_DENIED"},
      {grpc::StatusCode::RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED"},
      {grpc::StatusCode::UNIMPLEMENTED, "UNIMPLEMENTED"},
      {grpc::StatusCode::INTERNAL, "INTERNAL"},
      {grpc::StatusCode::UNAVAILABLE, "UNAVAILABLE"},
      {grpc::StatusCode::UNAUTHENTICATED, "UNAUTHENTICATED"},
  };
  auto found = names.find(code);
  return found == names.end() ? "CODE_" + std::to_string(code) : found->second;
}

// Streams a whole answer.
int StreamChat(v1::VLLMService::Stub& stub, const std::string& model) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto reader = stub.StreamChatCompletion(&context, ChatRequest(model, 32, 0));
  v1::ChatCompletionChunk chunk;
  while (reader->Read(&chunk)) PrintChunk(chunk);
  grpc::Status status = reader->Finish();
  std::cout << "status: " << CodeName(status.error_code()) << "\n";
  if (!status.ok()) std::cerr << "error: " << status.error_message() << "\n";
  return status.ok() ? 0 : 1;
}

// Asks for 100 tokens at 20 a second, reads 10 chunks, then cancels the call: the gateway
// aborts the generation in vLLM.
int CancelHalfWay(v1::VLLMService::Stub& stub, const std::string& model) {
  grpc::ClientContext context;
  auto reader = stub.StreamChatCompletion(&context, ChatRequest(model, 100, 20));
  v1::ChatCompletionChunk chunk;
  for (int received = 0; received < 10; ++received) {
    if (!reader->Read(&chunk)) {
      grpc::Status status = reader->Finish();
      std::cerr << "error: the stream ended before it was cancelled: " << CodeName(status.error_code())
                << " " << status.error_message() << "\n";
      return 1;
    }
    PrintChunk(chunk);
  }
  context.TryCancel();
  std::cout << "\ncancelled after 10 chunks\n";
  while (reader->Read(&chunk)) {
  }
  grpc::Status status = reader->Finish();
  std::cout << "status: " << CodeName(status.error_code()) << "\n";
  return status.error_code() == grpc::StatusCode::CANCELLED ? 0 : 1;
}

// Gives a slow stream 200 ms: it ends DEADLINE_EXCEEDED.
int Deadline(v1::VLLMService::Stub& stub, const std::string& model) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
  auto reader = stub.StreamChatCompletion(&context, ChatRequest(model, 100, 20));
  v1::ChatCompletionChunk chunk;
  while (reader->Read(&chunk)) PrintChunk(chunk);
  grpc::Status status = reader->Finish();
  std::cout << "\nstatus: " << CodeName(status.error_code()) << "\n";
  return status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ? 0 : 1;
}

// Asks for a model nobody serves and prints the google.rpc.ErrorInfo that the gateway sends in
// grpc-status-details-bin (grpc::Status::error_details() holds the serialized google.rpc.Status).
int NotFound(v1::VLLMService::Stub& stub) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto reader = stub.StreamChatCompletion(&context, ChatRequest("no-such-model", 8, 0));
  v1::ChatCompletionChunk chunk;
  while (reader->Read(&chunk)) {
  }
  grpc::Status status = reader->Finish();
  std::cout << "status: " << CodeName(status.error_code()) << "\nmessage: " << status.error_message() << "\n";
  google::rpc::Status details;
  bool found = false;
  if (details.ParseFromString(status.error_details())) {
    for (const google::protobuf::Any& detail : details.details()) {
      google::rpc::ErrorInfo info;
      if (!detail.UnpackTo(&info)) continue;
      found = true;
      std::cout << "error_info: reason=" << info.reason() << " domain=" << info.domain() << "\n";
      std::map<std::string, std::string> sorted(info.metadata().begin(), info.metadata().end());
      for (const auto& [key, value] : sorted) std::cout << "metadata: " << key << "=" << value << "\n";
    }
  }
  if (status.error_code() != grpc::StatusCode::NOT_FOUND) {
    std::cerr << "error: expected NOT_FOUND\n";
    return 1;
  }
  if (!found) {
    std::cerr << "error: no google.rpc.ErrorInfo in grpc-status-details-bin\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: chat-client ADDRESS [stream|cancel|deadline|not-found] [MODEL]\n";
    return 2;
  }
  const std::string address = argv[1];
  const std::string mode = argc > 2 ? argv[2] : "stream";
  const std::string model = argc > 3 ? argv[3] : "sim-model";
  auto stub = v1::VLLMService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  if (mode == "stream") return StreamChat(*stub, model);
  if (mode == "cancel") return CancelHalfWay(*stub, model);
  if (mode == "deadline") return Deadline(*stub, model);
  if (mode == "not-found") return NotFound(*stub);
  std::cerr << "error: unknown mode " << mode << "\n";
  return 2;
}
