import ProtoJSON

/// The tokens a vLLM answer says it used (`usage` of chat and completions; `input_tokens` and
/// `output_tokens` of Responses, where it sits inside `response`). Zero when it says nothing.
struct TokenUsage: Equatable {
  var prompt = 0
  var completion = 0

  var total: Int { prompt + completion }

  init(prompt: Int = 0, completion: Int = 0) {
    self.prompt = prompt
    self.completion = completion
  }

  init(in json: [UInt8]) {
    var reader = JSONReader(json)
    guard (try? reader.beginObject()) != nil else { return }
    while let key = try? reader.nextKeySlice() {
      if key.elementsEqual("usage".utf8), (try? reader.peekKind()) == .object {
        self = Self.usageObject(&reader)
        return
      }
      if key.elementsEqual("response".utf8), (try? reader.peekKind()) == .object, let raw = try? reader.rawValue() {
        let inner = TokenUsage(in: Array(raw))
        if inner.total > 0 {
          self = inner
          return
        }
        continue
      }
      guard (try? reader.skipValue()) != nil else { return }
    }
  }

  private static func usageObject(_ reader: inout JSONReader) -> TokenUsage {
    var usage = TokenUsage()
    guard (try? reader.beginObject()) != nil else { return usage }
    while let key = try? reader.nextKeySlice() {
      switch String(decoding: key, as: UTF8.self) {
      case "prompt_tokens", "input_tokens": usage.prompt = Int((try? reader.readInt64()) ?? 0)
      case "completion_tokens", "output_tokens": usage.completion = Int((try? reader.readInt64()) ?? 0)
      default: guard (try? reader.skipValue()) != nil else { return usage }
      }
    }
    return usage
  }
}
