import ProtoJSON

/// The tokens a vLLM answer says it used: prompt plus completion (`usage` of chat and
/// completions, `input_tokens` and `output_tokens` of Responses, where it sits inside
/// `response`). Zero when it says nothing.
enum TokenUsage {
  static func tokens(in json: [UInt8]) -> Int {
    var reader = JSONReader(json)
    guard (try? reader.beginObject()) != nil else { return 0 }
    while let key = try? reader.nextKeySlice() {
      if key.elementsEqual("usage".utf8), (try? reader.peekKind()) == .object {
        return usageObject(&reader)
      }
      if key.elementsEqual("response".utf8), (try? reader.peekKind()) == .object,
        let raw = try? reader.rawValue()
      {
        let inner = tokens(in: Array(raw))
        if inner > 0 { return inner }
        continue
      }
      guard (try? reader.skipValue()) != nil else { return 0 }
    }
    return 0
  }

  private static func usageObject(_ reader: inout JSONReader) -> Int {
    guard (try? reader.beginObject()) != nil else { return 0 }
    var parts = 0
    var total = 0
    while let key = try? reader.nextKeySlice() {
      let name = String(decoding: key, as: UTF8.self)
      switch name {
      case "prompt_tokens", "completion_tokens", "input_tokens", "output_tokens":
        parts += Int((try? reader.readInt64()) ?? 0)
      case "total_tokens":
        total = Int((try? reader.readInt64()) ?? 0)
      default:
        guard (try? reader.skipValue()) != nil else { return max(parts, total) }
      }
    }
    return max(parts, total)
  }
}
