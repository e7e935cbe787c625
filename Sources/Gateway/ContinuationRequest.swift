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
        default:
          break
        }
      }
      return nil
    } catch {
      return "the request did not parse"
    }
  }

  /// The upstream body for the continuation, or nil when nothing is left to generate.
  static func body(
    from request: [UInt8], progress: GenerationProgress, operation: Operation, converter: ProtoToJSON
  ) throws -> [UInt8]? {
    let limitFields: [Int32] = progress.isChat ? [8, 7] : [11]
    var overrides: [(key: String, json: String)] = []
    var limitKey: String? = nil
    var limit: UInt64? = nil
    var prompt: [UInt8] = []
    var reader = ProtoWireReader(request)
    while let field = try reader.next() {
      if limitKey == nil, field.wireType == .varint, let index = limitFields.firstIndex(of: field.number) {
        limitKey = progress.isChat ? (index == 0 ? "max_completion_tokens" : "max_tokens") : "max_tokens"
        limit = field.scalar
      } else if !progress.isChat, field.number == 2, field.wireType == .lengthDelimited {
        prompt = Array(request[field.range])
      }
    }
    if let limitKey, let limit {
      let remaining = Int(truncatingIfNeeded: limit) - progress.tokens
      guard remaining > 0 else { return nil }
      overrides.append((limitKey, String(remaining)))
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
}
