import ProtoJSON
import Testing

@testable import Gateway

/// The pieces a moving stream is made of, without sockets: what the client was sent (read from
/// the chunks' wire bytes), the continuation request, and the events rewritten to read as the
/// first upstream's.
@Suite struct StreamContinuationTests {
  private let toProto = JSONToProto(schema: .bundled)
  private let toJSON = ProtoToJSON(schema: .bundled)

  private func chunk(_ json: String, type: String = "ChatCompletionChunk") throws -> [UInt8] {
    var out: [UInt8] = []
    try toProto.append(
      from: Array(json.utf8), message: toProto.schema.message("vllmgateway.v1.\(type)")!, to: &out)
    return out
  }

  @Test func progressReadsTextTokensAndWhatCannotBeContinued() throws {
    var progress = GenerationProgress(isChat: true)
    let role = try chunk(#"{"id":"a","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#)
    #expect(progress.note(chunk: role) == .roleOnly)
    #expect(progress.note(chunk: try chunk(#"{"choices":[{"index":0,"delta":{"content":" The"}}]}"#)) == .something)
    _ = progress.note(chunk: try chunk(#"{"choices":[{"index":0,"delta":{"content":" fox"}}]}"#))
    #expect(String(decoding: progress.text, as: UTF8.self) == " The fox")
    #expect(progress.tokens == 2)
    #expect(progress.cannotContinue == nil && !progress.isFinished)
    _ = progress.note(chunk: try chunk(#"{"choices":[{"index":0,"delta":{"content":"."},"finish_reason":"stop"}]}"#))
    #expect(progress.isFinished)

    var tools = GenerationProgress(isChat: true)
    _ = tools.note(
      chunk: try chunk(#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","type":"function"}]}}]}"#))
    #expect(tools.cannotContinue == "the answer calls tools")

    var several = GenerationProgress(isChat: true)
    _ = several.note(chunk: try chunk(#"{"choices":[{"index":1,"delta":{"content":"x"}}]}"#))
    #expect(several.cannotContinue == "the call asked for several choices")
  }

  /// Bytes that are not a chunk (cut short, a length past the end, a group, a varint of
  /// eleven bytes) make the stream one that cannot be continued, and are never read past.
  @Test func aChunkThatDoesNotParseCannotBeContinued() throws {
    let whole = try chunk(#"{"id":"a","choices":[{"index":0,"delta":{"content":" The"}}]}"#)
    let broken: [[UInt8]] = [
      Array(whole.dropLast()),
      [0x2A, 0x7F, 0x08],
      [0x0B, 0x0C],
      [0x18] + [UInt8](repeating: 0xFF, count: 10) + [0x01],
      [0x2A, 0x04, 0x12, 0x05, 0x12, 0x03],
    ]
    for bytes in broken {
      var progress = GenerationProgress(isChat: true)
      #expect(progress.note(chunk: bytes) == .something)
      #expect(progress.cannotContinue == "a chunk did not parse", "\(bytes)")
    }
    var progress = GenerationProgress(isChat: true)
    _ = progress.note(chunk: whole)
    #expect(progress.cannotContinue == nil && progress.tokens == 1)
    // Only the range given is read: the same bytes with a chunk before them.
    var offset = GenerationProgress(isChat: true)
    _ = offset.note(chunk: [0x0A, 0x01, 0x78] + whole, range: 3..<(3 + whole.count))
    #expect(offset.cannotContinue == nil && String(decoding: offset.text, as: UTF8.self) == " The")
  }

  @Test func tokenIDsCountExactlyAndKeepTheFirstPrompt() throws {
    var progress = GenerationProgress(isChat: false)
    _ = progress.note(
      chunk: try chunk(
        #"{"choices":[{"index":0,"text":"","prompt_token_ids":[5,6,7],"token_ids":[136]}]}"#, type: "Completion"))
    _ = progress.note(chunk: try chunk(#"{"choices":[{"index":0,"text":"ab","token_ids":[1,2]}]}"#, type: "Completion"))
    // A continuation's own prompt holds generated tokens: the first prompt stays.
    _ = progress.note(
      chunk: try chunk(#"{"choices":[{"index":0,"text":"","prompt_token_ids":[5,6,7,136,1,2]}]}"#, type: "Completion"))
    #expect(progress.promptTokenIDs == [5, 6, 7])
    #expect(progress.tokenIDs == [136, 1, 2])
    #expect(progress.tokens == 3)
  }

  private var streamChat: Operation { VLLMService.operations.first { $0.rpc.hasSuffix("/StreamChatCompletion") }! }
  private var streamCompletion: Operation { VLLMService.operations.first { $0.rpc.hasSuffix("/StreamCompletion") }! }

  private func request(_ json: String, type: String) throws -> [UInt8] {
    var out: [UInt8] = []
    try toProto.append(from: Array(json.utf8), message: toProto.schema.message("vllmgateway.v1.\(type)")!, to: &out)
    return out
  }

  private func object(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

  @Test func chatContinuesTheAnswerAsAFinalAssistantMessage() throws {
    let original = try request(
      #"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":10,"seed":7}"#,
      type: "ChatCompletionRequest")
    var progress = GenerationProgress(isChat: true)
    _ = progress.note(chunk: try chunk(#"{"choices":[{"index":0,"delta":{"content":" a"}}]}"#))
    _ = progress.note(chunk: try chunk(#"{"choices":[{"index":0,"delta":{"content":" b"}}]}"#))
    let body = try #require(
      try ContinuationRequest.body(from: original, progress: progress, operation: streamChat, converter: toJSON))
    let text = object(body)
    #expect(text.contains(#"{"role":"user","content":"hi"},{"role":"assistant","content":" a b"}"#), "\(text)")
    #expect(text.contains(#""continue_final_message":true"#) && text.contains(#""add_generation_prompt":false"#))
    #expect(text.contains(#""max_tokens":8"#) && !text.contains(#""max_tokens":10"#))
    #expect(text.contains(#""seed":7"#) && text.contains(#""stream":true"#))
  }

  @Test func completionsContinueByTokenIDsWhenThereAreAny() throws {
    let original = try request(#"{"prompt":"Once","max_tokens":6}"#, type: "CompletionRequest")
    var byText = GenerationProgress(isChat: false)
    _ = byText.note(chunk: try chunk(#"{"choices":[{"index":0,"text":" upon"}]}"#, type: "Completion"))
    let textBody = object(
      try #require(
        try ContinuationRequest.body(
          from: original, progress: byText, operation: streamCompletion, converter: toJSON)))
    #expect(textBody.contains(#""prompt":"Once upon""#) && textBody.contains(#""max_tokens":5"#), "\(textBody)")

    var byIDs = GenerationProgress(isChat: false)
    _ = byIDs.note(
      chunk: try chunk(
        #"{"choices":[{"index":0,"text":" up","prompt_token_ids":[9],"token_ids":[4]}]}"#, type: "Completion"))
    let idBody = object(
      try #require(
        try ContinuationRequest.body(from: original, progress: byIDs, operation: streamCompletion, converter: toJSON)))
    #expect(idBody.contains(#""prompt":[9,4]"#), "\(idBody)")
  }

  @Test func nothingLeftToGenerateIsNoContinuation() throws {
    let original = try request(#"{"prompt":"x","max_tokens":1}"#, type: "CompletionRequest")
    var progress = GenerationProgress(isChat: false)
    _ = progress.note(chunk: try chunk(#"{"choices":[{"index":0,"text":" y"}]}"#, type: "Completion"))
    #expect(
      try ContinuationRequest.body(from: original, progress: progress, operation: streamCompletion, converter: toJSON)
        == nil)
  }

  @Test func requestsThatCannotBeContinuedSayWhy() throws {
    let n2 = try request(#"{"messages":[{"role":"user","content":"hi"}],"n":2}"#, type: "ChatCompletionRequest")
    #expect(ContinuationRequest.obstacle(to: n2, isChat: true) == "the call asks for several choices")
    let echo = try request(#"{"prompt":"x","echo":true}"#, type: "CompletionRequest")
    #expect(ContinuationRequest.obstacle(to: echo, isChat: false) == "the call asks for its prompt echoed")
    let ids = try request(#"{"prompt":[1,2,3]}"#, type: "CompletionRequest")
    #expect(ContinuationRequest.obstacle(to: ids, isChat: false) == "the prompt is not a single text")
  }

  @Test func continuedEventsReadAsTheFirstUpstreams() {
    var rewriter = ContinuedEventRewriter()
    rewriter.learn(from: Array(#"{"id":"chatcmpl-first","created":100,"choices":[]}"#.utf8))
    rewriter.tokensBefore = 4
    let content = rewriter.rewrite(
      Array(#"{"id":"chatcmpl-second","created":200,"choices":[{"index":0,"delta":{"content":"x"}}]}"#.utf8))
    #expect(
      object(content) == #"{"id":"chatcmpl-first","created":100,"choices":[{"index":0,"delta":{"content":"x"}}]}"#)
    let usage = rewriter.rewrite(
      Array(
        #"{"id":"s","choices":[],"usage":{"prompt_tokens":14,"total_tokens":20,"completion_tokens":6},"prompt_token_ids":[1]}"#
          .utf8))
    #expect(
      object(usage)
        == #"{"id":"chatcmpl-first","choices":[],"usage":{"prompt_tokens":10,"total_tokens":20,"completion_tokens":10},"prompt_token_ids":null}"#
    )
    let completion = rewriter.rewrite(
      Array(#"{"id":"s","choices":[{"index":0,"text":"","prompt_token_ids":[1,2],"token_ids":[3]}]}"#.utf8))
    #expect(
      object(completion)
        == #"{"id":"chatcmpl-first","choices":[{"index":0,"text":"","prompt_token_ids":null,"token_ids":[3]}]}"#)
  }

  @Test func aChatWithTokenIDsContinuesAsACompletionOfThem() throws {
    let original = try request(
      #"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":10,"max_tokens":99,"temperature":0,"tools":[{"type":"function","function":{"name":"f"}}],"return_token_ids":true}"#,
      type: "ChatCompletionRequest")
    var progress = GenerationProgress(isChat: true)
    _ = progress.note(
      chunk: try chunk(#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}],"prompt_token_ids":[1,2]}"#)
    )
    _ = progress.note(chunk: try chunk(#"{"choices":[{"index":0,"delta":{"content":"x"},"token_ids":[7,8]}]}"#))
    let next = try #require(
      try ContinuationRequest.request(from: original, progress: progress, operation: streamChat, converter: toJSON))
    #expect(next.path == "/v1/completions")
    let text = object(next.body)
    #expect(text.contains(#""prompt":[1,2,7,8]"#) && text.contains(#""max_tokens":8"#), "\(text)")
    #expect(text.contains(#""temperature":0"#) && text.contains(#""return_token_ids":true"#))
    for chatOnly in ["messages", "tools", "max_completion_tokens", "\"max_tokens\":99"] {
      #expect(!text.contains(chatOnly), "\(chatOnly) in \(text)")
    }
    // Asking for logprobs keeps the chat path, whose chunks carry them in their own shape.
    let withLogprobs = try request(
      #"{"messages":[{"role":"user","content":"hi"}],"logprobs":true,"max_tokens":10}"#, type: "ChatCompletionRequest")
    let chatPath = try #require(
      try ContinuationRequest.request(
        from: withLogprobs, progress: progress, operation: streamChat, converter: toJSON))
    #expect(chatPath.path == "/v1/chat/completions")
  }

  @Test func completionChunksComeBackAsChatChunks() {
    var rewriter = ContinuedEventRewriter()
    rewriter.learn(from: Array(#"{"id":"chatcmpl-first","object":"chat.completion.chunk","created":1}"#.utf8))
    rewriter.completionsAsChat = true
    let event = rewriter.rewrite(
      Array(
        #"{"id":"cmpl-2","object":"text_completion","created":2,"choices":[{"index":0,"text":"ab","logprobs":null,"finish_reason":"length","stop_reason":null,"prompt_token_ids":[1],"token_ids":[5]}]}"#
          .utf8))
    #expect(
      object(event)
        == #"{"id":"chatcmpl-first","object":"chat.completion.chunk","created":1,"choices":[{"index":0,"delta":{"content":"ab"},"finish_reason":"length","stop_reason":null,"token_ids":[5]}]}"#
    )
  }
}
