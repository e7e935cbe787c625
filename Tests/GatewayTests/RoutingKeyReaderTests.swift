import Fleet
import ProtoJSON
import Testing

@testable import Gateway

/// The routing key of a request body read the quick way (the gateway's own form, the model
/// first) is the one the JSON reader finds, and any other form is left to the reader.
@Suite struct RoutingKeyReaderTests {
  private let toProto = JSONToProto(schema: .bundled)
  private let toJSON = ProtoToJSON(schema: .vllmOrdered)

  /// The body the gateway sends vLLM for a client's request, written as the client's JSON.
  private func upstreamBody(_ rpc: String, _ request: String) throws -> [UInt8] {
    let operation = try #require(VLLMService.operations.first { $0.rpc.hasSuffix("/" + rpc) })
    var message: [UInt8] = []
    try toProto.append(
      from: Array(request.utf8), message: try #require(toProto.schema.message(operation.requestType)),
      to: &message)
    return try UpstreamRequestBody.json(from: message, operation: operation, converter: toJSON, stream: false)
  }

  private func expectSameKey(_ body: [UInt8], _ workload: RoutingKey.Workload) throws {
    let quick = try #require(RoutingKeyReader.keyOfTheGatewaysForm(body, workload: workload))
    let read = RoutingKeyReader.key(readingAll: body, workload: workload)
    #expect(quick.model == read.model)
    #expect(quick.prefix == read.prefix)
    #expect(quick.workload == read.workload)
  }

  @Test func theGatewaysBodiesAreReadTheQuickWayToTheSameKey() throws {
    let system = String(repeating: "You answer in verse. ", count: 30)
    let chat = try upstreamBody(
      "CreateChatCompletion",
      #"{"model":"llama-3.1-8b","messages":[{"role":"system","text":"\#(system)"},{"role":"user","text":"Hi"}],"#
        + #""max_tokens":16}"#)
    #expect(String(decoding: chat.prefix(40), as: UTF8.self).hasPrefix(#"{"model":"llama-3.1-8b","messages":"#))
    try expectSameKey(chat, .generation)
    #expect(RoutingKeyReader.keyOfTheGatewaysForm(chat, workload: .generation)?.prefix.hashes.count == 5)

    let completion = try upstreamBody(
      "CreateCompletion", #"{"model":"m","prompt_text":"\#(system)","max_tokens":4}"#)
    try expectSameKey(completion, .generation)

    let embedding = try upstreamBody("CreateEmbedding", #"{"model":"an-embedder","input_texts":{"values":["a"]}}"#)
    try expectSameKey(embedding, .pooling)
    #expect(RoutingKeyReader.keyOfTheGatewaysForm(embedding, workload: .pooling)?.model == "an-embedder")
  }

  /// One upstream routes by nothing: the record's model is read, the prompt is not hashed.
  @Test func withoutThePromptOnlyTheModelIsRead() throws {
    let prompt = String(repeating: "You answer in verse. ", count: 30)
    let chat = try upstreamBody(
      "CreateChatCompletion", #"{"model":"llama-3.1-8b","messages":[{"role":"user","text":"\#(prompt)"}]}"#)
    let quick = try #require(RoutingKeyReader.keyOfTheGatewaysForm(chat, workload: .generation, readingPrompt: false))
    let read = RoutingKeyReader.key(readingAll: chat, workload: .generation, readingPrompt: false)
    let whole = RoutingKeyReader.key(path: "/v1/chat/completions", body: chat, contentType: "application/json")
    for key in [quick, read] {
      #expect(key.model == "llama-3.1-8b" && key.workload == .generation && key.prefix == .none)
    }
    #expect(whole.model == "llama-3.1-8b" && whole.prefix.hashes.count > 0)
  }

  @Test func otherFormsAreLeftToTheReader() {
    let others = [
      #"{"messages":[{"role":"user","content":"Hi"}],"model":"m"}"#,  // the model not first
      #"{ "model":"m","messages":[]}"#,  // a space
      #"{"model":"m\"x","messages":[]}"#,  // an escape in the model
      #"{"model":"m","max_tokens":4,"messages":[]}"#,  // the prompt not next
      #"{"model":"m"}"#,  // no prompt
      #"{"model":"m"#,  // cut short
      #"{"model":""#,
    ]
    for body in others {
      #expect(RoutingKeyReader.keyOfTheGatewaysForm(Array(body.utf8), workload: .generation) == nil, "\(body)")
    }
    // Without a prompt to find, the model alone is enough.
    #expect(
      RoutingKeyReader.keyOfTheGatewaysForm(Array(#"{"model":"m","x":1}"#.utf8), workload: .pooling)?.model == "m")
  }
}
