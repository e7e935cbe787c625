import ArgumentParser
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import ProtoJSON
import ServerCLI

/// `vllm-grpc-gateway chat`: a newcomer's first call. Streams a chat answer from a gateway to the
/// terminal over gRPC (grpc-swift-2's client), or lists the models when asked nothing.
struct ChatCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "chat",
    abstract: "Ask a gateway a question and stream the answer to the terminal.",
    discussion: """
      Without --model, the gateway's first model is used (the models are listed on standard error). \
      Without a question, the models are listed and nothing is asked.
      """)

  @Option(help: "The gateway, HOST:PORT.")
  var target: String = "localhost:50051"

  @Option(help: "The model to ask (default: the first the gateway lists).")
  var model: String? = nil

  @Option(help: "The most tokens the answer may have.")
  var maxTokens: Int = 512

  @Option(help: "A system prompt.")
  var system: String? = nil

  @Option(help: "A client key, sent as authorization: Bearer (default: $VLLM_GRPC_GATEWAY_KEY).")
  var key: String? = nil

  @Argument(help: "The question.")
  var question: String? = nil

  func run() async throws {
    // Descriptor 1 holds /dev/null then (no socket takes its number): the answer would be lost.
    guard StandardDescriptors.startedWithStandardOutput else {
      Self.say("standard output is closed: there is nowhere to write the answer\n")
      throw ExitCode(1)
    }
    let address = try ListenAddress(target)
    let key = self.key ?? ProcessInfo.processInfo.environment["VLLM_GRPC_GATEWAY_KEY"]
    var metadata = GRPCCore.Metadata()
    if let key { metadata.addString("Bearer \(key)", forKey: "authorization") }
    let transport = try HTTP2ClientTransport.Posix(
      target: .dns(host: address.host, port: address.port), transportSecurity: .plaintext)
    do {
      try await ask(transport: transport, metadata: metadata)
    } catch let error as RPCError {
      // The gateway's own words, with the status's standard name.
      let name = ServerStatusCode(rawValue: error.code.rawValue)?.name ?? "\(error.code)"
      Self.say("\(name): \(error.message)\n")
      throw ExitCode(1)
    }
  }

  private func ask(transport: HTTP2ClientTransport.Posix, metadata: GRPCCore.Metadata) async throws {
    try await withGRPCClient(transport: transport) { client in
      var model = self.model
      if model == nil || question == nil {
        let models = try await GatewayCalls.listModels(client, metadata: metadata)
        if question == nil {
          for name in models { try Self.show(name + "\n") }
          return
        }
        guard let first = models.first else { throw ValidationError("the gateway lists no models") }
        Self.say("models: \(models.joined(separator: ", ")); asking \(first)\n")
        model = first
      }
      let request = GatewayCalls.chatRequest(
        model: model ?? "", system: system, question: question ?? "", maxTokens: maxTokens)
      try await GatewayCalls.streamChat(client, request: request, metadata: metadata) { text in
        try Self.show(text)
      }
      try Self.show("\n")
    }
  }

  /// Writes part of the answer to standard output. FileHandle's `write(_: Data)` ended the
  /// process with a backtrace when that failed; this throws, and the command says why.
  private static func show(_ text: String) throws {
    do {
      try FileHandle.standardOutput.write(contentsOf: Data(text.utf8))
    } catch {
      say("cannot write to standard output: \(error.localizedDescription)\n")
      throw ExitCode(1)
    }
  }

  /// A line for the user on standard error; nothing to be done when that fails too.
  private static func say(_ text: String) {
    try? FileHandle.standardError.write(contentsOf: Data(text.utf8))
  }
}

/// The two calls the chat command makes, with request bytes written by hand and answers read
/// through the gateway's own proto-to-JSON mapping (no generated Swift types needed).
enum GatewayCalls {
  static let service = "vllmgateway.v1.VLLMService"
  static let json = ProtoToJSON(schema: .bundled)

  static func chatRequest(model: String, system: String?, question: String, maxTokens: Int) -> [UInt8] {
    var request = ProtoWireWriter()
    request.lengthDelimited(1, Array(model.utf8))
    for (role, text) in [("system", system), ("user", question)] {
      guard let text else { continue }
      var message = ProtoWireWriter()
      message.lengthDelimited(1, Array(role.utf8))
      message.lengthDelimited(2, Array(text.utf8))
      request.lengthDelimited(2, message.bytes)
    }
    request.tag(7, .varint)
    request.varint(UInt64(max(1, maxTokens)))
    return request.bytes
  }

  static func listModels<Transport: ClientTransport>(
    _ client: GRPCClient<Transport>, metadata: GRPCCore.Metadata
  ) async throws -> [String] {
    try await client.unary(
      request: ClientRequest(message: [], metadata: metadata),
      descriptor: MethodDescriptor(fullyQualifiedService: service, method: "ListModels"),
      serializer: RawBytes(), deserializer: RawBytes(), options: .defaults
    ) { response in
      let object = try jsonObject(try response.message, typeName: "vllmgateway.v1.ListModelsResponse")
      return (object["data"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
    }
  }

  static func streamChat<Transport: ClientTransport>(
    _ client: GRPCClient<Transport>, request: [UInt8], metadata: GRPCCore.Metadata,
    onText: @escaping @Sendable (String) throws -> Void
  ) async throws {
    try await client.serverStreaming(
      request: ClientRequest(message: request, metadata: metadata),
      descriptor: MethodDescriptor(fullyQualifiedService: service, method: "StreamChatCompletion"),
      serializer: RawBytes(), deserializer: RawBytes(), options: .defaults
    ) { response in
      for try await chunk in response.messages {
        let object = try jsonObject(chunk, typeName: "vllmgateway.v1.ChatCompletionChunk")
        for choice in object["choices"] as? [[String: Any]] ?? [] {
          if let text = (choice["delta"] as? [String: Any])?["content"] as? String { try onText(text) }
        }
      }
    }
  }

  private static func jsonObject(_ bytes: [UInt8], typeName: String) throws -> [String: Any] {
    let text = try json.json(from: bytes, typeName: typeName)
    return try JSONSerialization.jsonObject(with: Data(text)) as? [String: Any] ?? [:]
  }
}

/// Messages as their serialized bytes, both ways.
struct RawBytes: MessageSerializer, MessageDeserializer {
  func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes {
    Bytes(message)
  }

  func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
    // grpc-swift lends a message's bytes only through a buffer pointer; they are copied out at once.
    serializedMessageBytes.withUnsafeBytes { Array($0) }
  }
}
