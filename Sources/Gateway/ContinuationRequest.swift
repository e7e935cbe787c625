import ProtoJSON

/// The request that carries on a streamed generation on another replica from where the first
/// stopped: for chat, the conversation with the text so far as a final assistant message that
/// vLLM continues (`continue_final_message`, no new generation prompt); for text completions, the
/// prompt followed by that text (by token ids when the call asked vLLM for them with
/// `return_token_ids`, which makes the continuation exact to the token). What is left of the token limit shrinks by what was generated;
/// sampling, seed and structured-output parameters carry over as the client set them.
enum ContinuationRequest {
  /// Why a request cannot be continued, or nil when it can.
  static func obstacle(to request: [UInt8], isChat: Bool) -> String? {
    do {
      var reader = ProtoWireReader(request)
      while let field = try reader.next() {
        switch (isChat, field.number) {
        case (true, 9), (false, 12):
          if field.scalar > 1 { return "the call asks for several choices" }
        case (true, 50), (false, 7):
          if field.scalar != 0 { return "the call asks for its prompt echoed" }
        case (false, 6):
          if field.scalar > 1 { return "the call asks for best_of" }
        case (false, 3), (false, 4), (false, 5):
          return "the prompt is not a single text"
        case (true, 58), (false, 52):
          return Self.structuredOutput
        case (true, 11), (false, 51):
          // A response format other than plain text constrains the output by a grammar.
          if try !isPlainText(format: field.range, in: request) { return Self.structuredOutput }
        default:
          break
        }
      }
      return nil
    } catch {
      return "the request did not parse"
    }
  }

  /// vLLM's grammar would start again at the continuation's first token, as if nothing had been
  /// generated: the output would not be the one an uninterrupted run gives.
  static let structuredOutput = "the call asks for structured output"

  /// Whether a ResponseFormat message's type (field 1) is "text" or unset.
  private static func isPlainText(format range: Range<Int>, in request: [UInt8]) throws -> Bool {
    var reader = ProtoWireReader(request, range: range)
    while let field = try reader.next() {
      if field.number == 1, field.wireType == .lengthDelimited {
        return request[field.range].elementsEqual("text".utf8)
      }
    }
    return true
  }

  /// The continuation's upstream path and body, or nil when nothing is left to generate. A chat
  /// whose token ids vLLM reports (the call asked for `return_token_ids`) and that asked for no
  /// logprobs goes on through /v1/completions from its prompt's ids and the generated ones: exact
  /// to the token, where the answer's text may not tokenize back to the same tokens.
  static func request(
    from request: [UInt8], progress: GenerationProgress, operation: Operation, converter: ProtoToJSON
  ) throws -> (path: String, body: [UInt8])? {
    if progress.isChat, progress.promptTokenIDs != nil, try !asksForLogprobs(request) {
      return try chatByTokens(from: request, progress: progress, operation: operation, converter: converter)
        .map { ("/v1/completions", $0) }
    }
    return try body(from: request, progress: progress, operation: operation, converter: converter)
      .map { (operation.upstreamPath, $0) }
  }

  /// The upstream body for the continuation, or nil when nothing is left to generate.
  static func body(
    from request: [UInt8], progress: GenerationProgress, operation: Operation, converter: ProtoToJSON
  ) throws -> [UInt8]? {
    var overrides: [(key: String, json: String)] = []
    var prompt: [UInt8] = []
    var reader = ProtoWireReader(request)
    while let field = try reader.next() {
      if !progress.isChat, field.number == 2, field.wireType == .lengthDelimited {
        prompt = Array(request[field.range])
      }
    }
    if let limit = try tokenLimit(of: request, isChat: progress.isChat) {
      let remaining = Int(truncatingIfNeeded: limit.value).saturatingSubtract(progress.tokens)
      guard remaining > 0 else { return nil }
      overrides.append((limit.key, String(remaining)))
    }
    var message = request
    if progress.isChat {
      // The answer so far, as the conversation's last message: ChatMessage{role: 1, text: 2},
      // appended to the repeated messages field (2).
      var writer = ProtoWireWriter()
      let start = writer.begin(2)
      writer.lengthDelimited(1, Array("assistant".utf8))
      writer.lengthDelimited(2, progress.text)
      writer.end(start)
      message.append(contentsOf: writer.bytes)
      overrides.append(("continue_final_message", "true"))
      overrides.append(("add_generation_prompt", "false"))
    } else if let promptIDs = progress.promptTokenIDs {
      // The tokens themselves: exact, whatever their text would tokenize to.
      let ids = (promptIDs + progress.tokenIDs).map(String.init).joined(separator: ",")
      overrides.append(("prompt", "[" + ids + "]"))
    } else {
      var writer = JSONWriter()
      writer.string(String(decoding: prompt + progress.text, as: UTF8.self))
      overrides.append(("prompt", String(decoding: writer.bytes, as: UTF8.self)))
    }
    return try UpstreamRequestBody.json(
      from: message, operation: operation, converter: converter, stream: true, extraOverrides: overrides)
  }

  /// Chat keys /v1/completions does not take, or that mean something else there.
  private static let chatOnlyKeys: Set<String> = [
    "messages", "tools", "tool_choice", "parallel_tool_calls", "functions", "function_call", "reasoning_effort",
    "include_reasoning", "echo", "add_generation_prompt", "continue_final_message", "add_special_tokens",
    "documents", "chat_template", "chat_template_kwargs", "mm_processor_kwargs", "media_io_kwargs",
    "return_prompt_text", "logprobs", "top_logprobs", "prompt_logprobs", "max_completion_tokens", "max_tokens", "n",
    "stream", "return_token_ids",
  ]

  /// A chat's continuation as a completion of its rendered prompt's token ids and the tokens
  /// generated so far, with the chat's sampling parameters.
  private static func chatByTokens(
    from request: [UInt8], progress: GenerationProgress, operation: Operation, converter: ProtoToJSON
  ) throws -> [UInt8]? {
    guard let promptIDs = progress.promptTokenIDs else { return nil }
    var writer = JSONWriter()
    writer.beginObject()
    if let limit = try tokenLimit(of: request, isChat: true) {
      let remaining = Int(truncatingIfNeeded: limit.value).saturatingSubtract(progress.tokens)
      guard remaining > 0 else { return nil }
      writer.key("max_tokens")
      writer.raw(Array(String(remaining).utf8))
    }
    let chat = try UpstreamRequestBody.json(from: request, operation: operation, converter: converter, stream: true)
    var members = JSONReader(chat)
    try members.beginObject()
    while let key = try members.nextKeySlice() {
      let value = try members.rawValue()
      let name = String(decoding: key, as: UTF8.self)
      guard !chatOnlyKeys.contains(name) else { continue }
      writer.key(name)
      writer.raw(value)
    }
    writer.key("prompt")
    writer.raw(Array(("[" + (promptIDs + progress.tokenIDs).map(String.init).joined(separator: ",") + "]").utf8))
    writer.key("stream")
    writer.raw(Array("true".utf8))
    writer.key("return_token_ids")
    writer.raw(Array("true".utf8))
    writer.endObject()
    return writer.bytes
  }

  /// The token limit vLLM goes by, and its key: a chat's max_completion_tokens (8) before its
  /// max_tokens (7); a completion's max_tokens (11).
  private static func tokenLimit(of request: [UInt8], isChat: Bool) throws -> (key: String, value: UInt64)? {
    let fields: [(number: Int32, key: String)] =
      isChat ? [(8, "max_completion_tokens"), (7, "max_tokens")] : [(11, "max_tokens")]
    var values: [Int32: UInt64] = [:]
    var reader = ProtoWireReader(request)
    while let field = try reader.next() {
      if field.wireType == .varint, fields.contains(where: { $0.number == field.number }) {
        values[field.number] = field.scalar
      }
    }
    return fields.lazy.compactMap { field in values[field.number].map { (field.key, $0) } }.first
  }

  /// Whether a chat request asks for logprobs (field 5), whose shape a completion's differs from.
  private static func asksForLogprobs(_ request: [UInt8]) throws -> Bool {
    var reader = ProtoWireReader(request)
    var asks = false
    while let field = try reader.next() {
      if field.number == 5 && field.wireType == .varint { asks = field.scalar != 0 }
    }
    return asks
  }
}
