// A Swift client of vllm-grpc-gateway on grpc-swift-2: streams a chat answer, cancels a stream
// half way, sets a deadline, and reads the google.rpc.ErrorInfo of an error.
//
//     chat-client HOST:PORT [stream|cancel|deadline|not-found] [MODEL]

import Foundation  // exit, FileHandle.standardError
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
import SwiftProtobuf

typealias VLLM = Vllmgateway_V1_VLLMService.Client<HTTP2ClientTransport.Posix>

@main
struct ChatClient {
  static func main() async {
    let arguments = CommandLine.arguments
    guard arguments.count >= 2, let colon = arguments[1].lastIndex(of: ":"),
      let port = Int(arguments[1][colon...].dropFirst())
    else {
      fail("usage: chat-client HOST:PORT [stream|cancel|deadline|not-found] [MODEL]", code: 2)
    }
    let host = String(arguments[1][..<colon])
    let mode = arguments.count > 2 ? arguments[2] : "stream"
    let model = arguments.count > 3 ? arguments[3] : "sim-model"
    do {
      let transport = try HTTP2ClientTransport.Posix(
        target: .dns(host: host, port: port), transportSecurity: .plaintext)
      try await withGRPCClient(transport: transport) { client in
        let vllm = VLLM(wrapping: client)
        switch mode {
        case "stream": try await streamChat(vllm, model: model)
        case "cancel": try await cancelHalfWay(vllm, model: model)
        case "deadline": try await deadline(vllm, model: model)
        case "not-found": try await notFound(vllm)
        default: fail("unknown mode \(mode)", code: 2)
        }
      }
    } catch {
      fail("error: \(error)")
    }
  }
}

func chatRequest(model: String, maxTokens: Int32, tokensPerSecond: Double? = nil)
  -> Vllmgateway_V1_ChatCompletionRequest
{
  .with { request in
    request.model = model
    request.maxTokens = maxTokens
    var message = Vllmgateway_V1_ChatMessage()
    message.role = "user"
    message.text = "Tell me about HTTP/2"
    request.messages = [message]
    if let tokensPerSecond {
      // extra_body goes into vLLM's JSON as it is; "vllm_sim" paces the simulator's tokens.
      request.extraBody = ["vllm_sim": .init(structValue: ["tokens_per_second": .init(numberValue: tokensPerSecond)])]
    }
  }
}

/// Streams a whole answer.
func streamChat(_ vllm: VLLM, model: String) async throws {
  var options = CallOptions.defaults
  options.timeout = .seconds(60)
  try await vllm.streamChatCompletion(chatRequest(model: model, maxTokens: 32), options: options) {
    response in
    for try await chunk in response.messages {
      show(chunk)
    }
  }
  print("status: OK")
}

/// Asks for 100 tokens at 20 a second and reads 10 chunks. Leaving the response handler before
/// the stream ends cancels the RPC: grpc-swift resets the HTTP/2 stream (RST_STREAM CANCEL), and
/// the gateway aborts the generation in vLLM. (Cancelling the Task that makes the call does too;
/// the call then throws CancellationError.)
func cancelHalfWay(_ vllm: VLLM, model: String) async throws {
  let request = chatRequest(model: model, maxTokens: 100, tokensPerSecond: 20)
  let received = try await vllm.streamChatCompletion(request) { response in
    var received = 0
    for try await chunk in response.messages {
      show(chunk)
      received += 1
      if received == 10 { break }
    }
    return received
  }
  print("\ncancelled after \(received) chunks")
}

/// Gives a slow stream 200 ms: the call throws RPCError with code deadlineExceeded. At the
/// deadline grpc-swift resets the stream (the gateway also has it, as grpc-timeout), and the
/// gateway aborts the generation in vLLM.
func deadline(_ vllm: VLLM, model: String) async throws {
  var options = CallOptions.defaults
  options.timeout = .milliseconds(200)
  do {
    let request = chatRequest(model: model, maxTokens: 100, tokensPerSecond: 20)
    try await vllm.streamChatCompletion(request, options: options) { response in
      for try await chunk in response.messages {
        show(chunk)
      }
    }
    fail("\nthe stream ended within its deadline: expected DEADLINE_EXCEEDED")
  } catch let error as RPCError where error.code == .deadlineExceeded {
    print("\nstatus: \(specName(error.code))")
  }
}

/// Asks for a model nobody serves and prints the google.rpc.ErrorInfo that the gateway sends in
/// the grpc-status-details-bin trailer (a serialized google.rpc.Status).
func notFound(_ vllm: VLLM) async throws {
  do {
    _ = try await vllm.createChatCompletion(chatRequest(model: "no-such-model", maxTokens: 8))
    fail("the call succeeded: expected NOT_FOUND")
  } catch let error as RPCError where error.code == .notFound {
    print("status: \(specName(error.code))")
    print("message: \(error.message)")
    guard let status = try error.unpackGoogleRPCStatus(),
      let info = status.details.lazy.compactMap(\.errorInfo).first
    else {
      fail("no google.rpc.ErrorInfo in grpc-status-details-bin")
    }
    print("error_info: reason=\(info.reason) domain=\(info.domain)")
    for (key, value) in info.metadata.sorted(by: { $0.key < $1.key }) {
      print("metadata: \(key)=\(value)")
    }
  }
}

/// Prints a chunk's text as it comes, and the usage that the last chunk carries.
func show(_ chunk: Vllmgateway_V1_ChatCompletionChunk) {
  for choice in chunk.choices {
    print(choice.delta.content, terminator: "")
  }
  if chunk.hasUsage {
    print("\n[usage: \(chunk.usage.promptTokens) prompt + \(chunk.usage.completionTokens) completion tokens]")
  }
  fflush(nil)  // every C stream: naming `stdout` is not concurrency-safe in Swift 6
}

/// The code as the gRPC spec spells it: deadlineExceeded → DEADLINE_EXCEEDED.
func specName(_ code: RPCError.Code) -> String {
  if code == .internalError { return "INTERNAL" }
  return String(describing: code).reduce(into: "") { name, letter in
    name += letter.isUppercase ? "_\(letter)" : letter.uppercased()
  }
}

func fail(_ message: String, code: Int32 = 1) -> Never {
  FileHandle.standardError.write(Data((message + "\n").utf8))
  exit(code)
}
