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

  /// Reads the last `"usage"` member of `json`. vLLM writes usage after the choices, so the
  /// search runs from the end and never walks the generated text: parsing the whole answer again
  /// cost about 20,000 instructions per call (callgrind), three times what this call's key, log
  /// and metrics may add together. A `"usage"` that is an object key is unmistakable in valid
  /// JSON: inside a string every quote is escaped, so an unescaped quote before `usage"` opens a
  /// string, and the quote after it closes that string.
  init(in json: [UInt8]) {
    self = Self.last(in: json) ?? TokenUsage()
  }

  /// The last `"usage"` object of `json`; nil when it has none (or only nulls).
  static func last(in json: [UInt8]) -> TokenUsage? {
    var end = json.count
    while let start = lastUsageKey(in: json, before: end) {
      if let usage = usageObject(json, keyAt: start) { return usage }
      end = start
    }
    return nil
  }

  /// Whether a streamed event may carry usage: not when it ends with its `choices` array (`]}`),
  /// as vLLM's chunks of generated text do, the usage following the choices where there is one.
  /// Lets a stream's usage be read as its events pass for a handful of instructions a token.
  static func mayBeIn(event json: Span<UInt8>) -> Bool {
    var end = json.count
    while end > 0, isWhitespace(json[end - 1]) { end -= 1 }
    guard end >= 2, json[end - 1] == UInt8(ascii: "}") else { return end > 0 }
    var before = end - 2
    while before > 0, isWhitespace(json[before]) { before -= 1 }
    return json[before] != UInt8(ascii: "]")
  }

  /// Where the last unescaped `"usage"` before `end` starts.
  private static func lastUsageKey(in json: [UInt8], before end: Int) -> Int? {
    var at = end - 7  // the length of "usage" with its quotes
    while at >= 0 {
      switch json[at] {
      case UInt8(ascii: "\""):
        if json[at + 6] == UInt8(ascii: "\""), json[at + 1] == UInt8(ascii: "u"), json[at + 2] == UInt8(ascii: "s"),
          json[at + 3] == UInt8(ascii: "a"), json[at + 4] == UInt8(ascii: "g"), json[at + 5] == UInt8(ascii: "e"),
          !isEscaped(json, quoteAt: at)
        {
          return at
        }
        // Not a key starting here: the quote can only be the closing one of a key six back.
        at -= 6
      // A backwards Horspool search: the nearest key start that could span this byte is where
      // the byte would be that letter of `"usage"`; a byte not in it at all skips seven.
      case UInt8(ascii: "u"): at -= 1
      case UInt8(ascii: "s"): at -= 2
      case UInt8(ascii: "a"): at -= 3
      case UInt8(ascii: "g"): at -= 4
      case UInt8(ascii: "e"): at -= 5
      default: at -= 7
      }
    }
    return nil
  }

  /// Whether the quote at `quoteAt` follows an odd run of backslashes.
  private static func isEscaped(_ json: [UInt8], quoteAt: Int) -> Bool {
    var backslashes = 0
    var at = quoteAt - 1
    while at >= 0, json[at] == UInt8(ascii: "\\") {
      backslashes += 1
      at -= 1
    }
    return backslashes % 2 == 1
  }

  /// The usage object after the key at `keyAt`, or nil when a colon and an object do not
  /// follow. Scanned by hand: the object is small, and JSONReader's general machinery cost
  /// about 3,700 instructions for its four members. The scan stops once both counts are read:
  /// vLLM's details that follow them cost it as much again (callgrind).
  private static func usageObject(_ json: [UInt8], keyAt: Int) -> TokenUsage? {
    var at = skippingWhitespace(json, from: keyAt + 7)
    guard at < json.count, json[at] == UInt8(ascii: ":") else { return nil }
    at = skippingWhitespace(json, from: at + 1)
    guard at < json.count, json[at] == UInt8(ascii: "{") else { return nil }
    if let usage = vllmUsage(json, objectAt: at) { return usage }
    var usage = TokenUsage()
    var sawPrompt = false
    var sawCompletion = false
    var depth = 0
    while at < json.count {
      switch json[at] {
      case UInt8(ascii: "\""):
        let nameStart = at + 1
        at = nameStart
        while at < json.count, json[at] != UInt8(ascii: "\"") {
          at += json[at] == UInt8(ascii: "\\") ? 2 : 1
        }
        guard at < json.count else { return nil }
        let name = json[nameStart..<at]
        at = skippingWhitespace(json, from: at + 1)
        // A string followed by a colon in the usage object itself is one of its keys.
        guard depth == 1, at < json.count, json[at] == UInt8(ascii: ":") else { continue }
        at = skippingWhitespace(json, from: at + 1)
        if name.equals("prompt_tokens") || name.equals("input_tokens") {
          usage.prompt = readCount(json, at: &at)
          sawPrompt = true
        } else if name.equals("completion_tokens") || name.equals("output_tokens") {
          usage.completion = readCount(json, at: &at)
          sawCompletion = true
        }
        if sawPrompt && sawCompletion { return usage }
      case UInt8(ascii: "{"), UInt8(ascii: "["):
        depth += 1
        at += 1
      case UInt8(ascii: "}"), UInt8(ascii: "]"):
        depth -= 1
        at += 1
        if depth == 0 { return usage }
      default:
        at += 1
      }
    }
    return nil
  }

  /// The usage object as vLLM writes it, `{"prompt_tokens":N,"total_tokens":N,"completion_tokens":N`,
  /// read by comparing its keys where they must be; nil for any other form (spaces, another
  /// order, no completion), which the general scan reads. About 300 instructions where the
  /// general scan took 1,000 (callgrind, a unary chat call with usage).
  static func vllmUsage(_ json: [UInt8], objectAt start: Int) -> TokenUsage? {
    var at = start + 1
    guard matches(json, at: &at, #""prompt_tokens":"#), let prompt = readDigits(json, at: &at),
      matches(json, at: &at, #","total_tokens":"#), readDigits(json, at: &at) != nil,
      matches(json, at: &at, #","completion_tokens":"#), let completion = readDigits(json, at: &at)
    else { return nil }
    return TokenUsage(prompt: prompt, completion: completion)
  }

  /// Whether `text` is at `at`, moving past it if so.
  private static func matches(_ json: [UInt8], at: inout Int, _ text: StaticString) -> Bool {
    let end = at + text.utf8CodeUnitCount
    guard end <= json.count, json[at..<end].equals(text) else { return false }
    at = end
    return true
  }

  /// `readCount`, nil unless at least one digit is there.
  private static func readDigits(_ json: [UInt8], at: inout Int) -> Int? {
    let start = at
    let value = readCount(json, at: &at)
    return at > start ? value : nil
  }

  /// A non-negative integer's digits at `at` (up to 18 of them, which no token count reaches).
  private static func readCount(_ json: [UInt8], at: inout Int) -> Int {
    var value = 0
    var digits = 0
    while at < json.count, digits < 18, json[at] >= UInt8(ascii: "0"), json[at] <= UInt8(ascii: "9") {
      value = value * 10 + Int(json[at] - UInt8(ascii: "0"))
      digits += 1
      at += 1
    }
    return value
  }

  private static func skippingWhitespace(_ json: [UInt8], from start: Int) -> Int {
    var at = start
    while at < json.count, isWhitespace(json[at]) { at += 1 }
    return at
  }

  private static func isWhitespace(_ byte: UInt8) -> Bool {
    byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
  }
}
