import ProtoJSON

/// Makes the events of a continued stream read as the first upstream's: the same `id` and
/// `created` in every chunk, and a final usage that counts the whole generation (the tokens sent
/// before the switch were prompt to the second upstream and completion to the client). Only
/// streams that moved pay for this.
struct ContinuedEventRewriter {
  /// The first upstream's raw JSON values of `id` and `created`.
  var id: [UInt8]? = nil
  var created: [UInt8]? = nil
  /// Tokens generated before the current upstream took over.
  var tokensBefore = 0
  /// Whether the current upstream continues a chat as a completion of token ids, whose chunks
  /// are turned back into chat chunks.
  var completionsAsChat = false

  /// Remembers the identity of the first upstream's stream from one of its events.
  mutating func learn(from event: [UInt8]) {
    guard id == nil else { return }
    var values: [String: ArraySlice<UInt8>] = [:]
    _ = Self.rewrite(event) { key, value in
      if key == "id" || key == "created" { values[key] = value }
      return nil
    }
    id = values["id"].map(Array.init)
    created = values["created"].map(Array.init)
  }

  /// The event as the client should see it. The prompt token ids a continuation reports are its
  /// own prompt's, which hold generated tokens: the client had the real prompt's already.
  func rewrite(_ event: [UInt8]) -> [UInt8] {
    Self.rewrite(event) { key, value in
      switch key {
      case "id": return id
      case "created": return created
      case "usage": return adjustedUsage(value)
      case "prompt_token_ids", "prompt_text": return Self.null
      case "object" where completionsAsChat: return Self.chatChunkObject
      case "choices" where completionsAsChat: return Self.chatChoices(fromCompletionChoices: value)
      case "choices": return Self.rewriteElements(value) { key, _ in key == "prompt_token_ids" ? Self.null : nil }
      default: return nil
      }
    } ?? event
  }

  private static let null = Array("null".utf8)
  private static let chatChunkObject = Array("\"chat.completion.chunk\"".utf8)

  /// A completion chunk's choices as a chat chunk's: each `text` becomes `delta.content`; the
  /// index, finish and stop reasons and token ids stay; logprobs (shaped otherwise) and prompt
  /// ids go.
  static func chatChoices(fromCompletionChoices array: ArraySlice<UInt8>) -> [UInt8]? {
    var reader = JSONReader(Array(array))
    var writer = JSONWriter()
    do {
      try reader.beginArray()
      writer.beginArray()
      while try reader.nextElement() {
        try reader.beginObject()
        writer.beginObject()
        while let key = try reader.nextKeySlice() {
          let name = String(decoding: key, as: UTF8.self)
          let value = try reader.rawValue()
          switch name {
          case "text":
            writer.key("delta")
            writer.beginObject()
            writer.key("content")
            writer.raw(value)
            writer.endObject()
          case "index", "finish_reason", "stop_reason", "token_ids":
            writer.key(name)
            writer.raw(value)
          default:
            break
          }
        }
        writer.endObject()
      }
      writer.endArray()
    } catch {
      return nil
    }
    return writer.bytes
  }

  /// The same splice over each object of a JSON array; nil when nothing changed.
  static func rewriteElements(
    _ array: ArraySlice<UInt8>, _ replacement: (String, ArraySlice<UInt8>) -> [UInt8]?
  ) -> [UInt8]? {
    let bytes = Array(array)
    var reader = JSONReader(bytes)
    var out: [UInt8] = []
    var copied = 0
    do {
      try reader.beginArray()
      while try reader.nextElement() {
        let element = try reader.rawValue()
        guard let new = rewrite(Array(element), replacement) else { continue }
        out.append(contentsOf: bytes[copied..<element.startIndex])
        out.append(contentsOf: new)
        copied = element.endIndex
      }
    } catch {
      return nil
    }
    guard copied > 0 else { return nil }
    out.append(contentsOf: bytes[copied...])
    return out
  }

  private func adjustedUsage(_ value: ArraySlice<UInt8>) -> [UInt8]? {
    guard tokensBefore > 0 else { return nil }
    let usage = Array(value)
    var counts: [String: Int64] = [:]
    _ = Self.rewrite(usage) { key, number in
      var reader = JSONReader(Array(number))
      counts[key] = reader.readPlainInteger()
      return nil
    }
    guard let prompt = counts["prompt_tokens"], let completion = counts["completion_tokens"] else { return nil }
    let moved = Int64(tokensBefore)
    return Self.rewrite(usage) { key, _ in
      switch key {
      case "prompt_tokens": Array(String(max(0, prompt - moved)).utf8)
      case "completion_tokens": Array(String(completion + moved).utf8)
      default: nil
      }
    }
  }

  /// Splices new values into a JSON object's top-level members: `replacement` gets each key and
  /// its raw value and returns the new raw value, or nil to keep it. Nil when `object` is not a
  /// JSON object or nothing changed.
  static func rewrite(_ object: [UInt8], _ replacement: (String, ArraySlice<UInt8>) -> [UInt8]?) -> [UInt8]? {
    var reader = JSONReader(object)
    var out: [UInt8] = []
    var copied = 0
    do {
      try reader.beginObject()
      while let key = try reader.nextKeySlice() {
        let value = try reader.rawValue()
        guard let new = replacement(String(decoding: key, as: UTF8.self), value) else { continue }
        out.append(contentsOf: object[copied..<value.startIndex])
        out.append(contentsOf: new)
        copied = value.endIndex
      }
    } catch {
      return nil
    }
    guard copied > 0 else { return nil }
    out.append(contentsOf: object[copied...])
    return out
  }
}
