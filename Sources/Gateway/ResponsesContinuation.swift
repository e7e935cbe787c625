import ProtoJSON

/// The request that carries on a streamed Responses call on another replica from where the first
/// stopped. vLLM's /v1/responses cannot continue a message, so the continuation goes through
/// /v1/chat/completions: the Responses request as chat (ResponsesChatTranslation), with the text
/// so far as a final assistant message that vLLM continues (`continue_final_message`, no new
/// generation prompt). What is left of the token limit shrinks by what was generated; sampling,
/// seed and every other parameter the translation carries stay as the client set them. Structured
/// output is not continued: vLLM would constrain the continuation as a whole new document.
enum ResponsesContinuation {
  /// Why a ResponseRequest cannot be continued through chat, or nil when it can: what the chat
  /// translation would leave out or change (stored state, logprobs, input the translation drops),
  /// and what a response served by chat cannot be (stored, run in the background).
  static func obstacle(to request: [UInt8]) -> String? {
    do {
      var reader = ProtoWireReader(request)
      while let field = try reader.next() {
        switch (field.number, field.wireType) {
        case (3, .lengthDelimited):
          if let reason = try inputObstacle(request, field.range) { return reason }
        case (9, _):
          return "the call continues a stored response"
        case (14, .lengthDelimited) where isStructuredOutput(request[field.range]):
          // The continuation's grammar would start from nothing, not from the text so far.
          return "the call asks for structured output"
        case (12, .varint) where field.scalar != 0:
          return "the call asks for the response to be stored"
        case (18, .varint) where field.scalar != 0:
          return "the call asks for logprobs"
        case (22, .lengthDelimited):
          if String(decoding: request[field.range], as: UTF8.self).contains("logprobs") {
            return "the call asks for logprobs"
          }
        case (23, .varint) where field.scalar != 0:
          return "the call runs in the background"
        default:
          break
        }
      }
      return nil
    } catch {
      return "the request did not parse"
    }
  }

  /// Whether the `text` parameter (a Struct) asks for a JSON format. Its string values are
  /// plain bytes in the encoding, so looking for the format types is enough: a false positive
  /// only makes a call one that cannot move.
  private static func isStructuredOutput(_ text: ArraySlice<UInt8>) -> Bool {
    let encoded = String(decoding: text, as: UTF8.self)
    return encoded.contains("json_schema") || encoded.contains("json_object")
  }

  /// What in the input items (a ResponseItemList) chat has no place for: reasoning items, items
  /// of other types, and message parts other than text and images.
  private static func inputObstacle(_ bytes: [UInt8], _ range: Range<Int>) throws(ProtoWireReader.Failure) -> String? {
    var items = ProtoWireReader(bytes, range: range)
    while let item = try items.next() {
      guard item.number == 1 else { continue }
      var members = ProtoWireReader(bytes, range: item.range)
      while let member = try members.next() {
        switch member.number {
        case 1:
          var message = ProtoWireReader(bytes, range: member.range)
          while let part = try message.next() {
            guard part.number == 4 else { continue }
            var values = ProtoWireReader(bytes, range: part.range)
            while let value = try values.next() {
              guard value.number == 1 else { continue }
              var content = ProtoWireReader(bytes, range: value.range)
              // Input text, output text and images; not refusals, reasoning or other parts.
              while let kind = try content.next() {
                if ![1, 2, 3].contains(kind.number) { return "the input has content chat cannot carry" }
              }
            }
          }
        case 2, 3:
          break  // function calls and their outputs
        default:
          return "the input has items chat cannot carry"
        }
      }
    }
    return nil
  }

  /// The chat request that continues `text` (`tokens` tokens) of the answer to a Responses
  /// request (as a JSON object); with nothing generated yet, the request that starts it. Nil when
  /// nothing is left to generate.
  static func chatRequest(fromResponses request: [String: Any], text: String, tokens: Int) -> [String: Any]? {
    var chat = ResponsesChatTranslation.chatRequest(fromResponses: request, stream: true)
    guard tokens > 0 else { return chat }
    for key in ["max_completion_tokens", "max_tokens"] {
      guard let limit = chat[key] as? Int else { continue }
      let remaining = limit.saturatingSubtract(tokens)
      guard remaining > 0 else { return nil }
      chat[key] = remaining
    }
    chat["messages"] = (chat["messages"] as? [[String: Any]] ?? []) + [["role": "assistant", "content": text]]
    chat["continue_final_message"] = true
    chat["add_generation_prompt"] = false
    return chat
  }

  /// A continuation's chat usage as the whole response's: the tokens generated before it took
  /// over were prompt to its upstream and are output to the client.
  static func usage(_ usage: [String: Any], tokensBefore: Int) -> [String: Any] {
    guard tokensBefore > 0, let prompt = usage["prompt_tokens"] as? Int,
      let completion = usage["completion_tokens"] as? Int
    else { return usage }
    var adjusted = usage
    let adjustedPrompt = max(0, prompt.saturatingSubtract(tokensBefore))
    let adjustedCompletion = completion.saturatingAdd(tokensBefore)
    adjusted["prompt_tokens"] = adjustedPrompt
    adjusted["completion_tokens"] = adjustedCompletion
    adjusted["total_tokens"] = adjustedPrompt.saturatingAdd(adjustedCompletion)
    return adjusted
  }
}
