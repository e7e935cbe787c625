import Foundation

/// What the simulator reads from a request body.
struct SimulatedRequest {
  var object: [String: Any]
  var model: String?
  /// The text the output is derived from, so the same prompt always gets the same answer.
  var promptText: String
  /// How many tokens of the answer to `promptText` the request already holds, and continues
  /// after: a chat request whose final assistant message is a start of that answer, sent with
  /// `continue_final_message`, or a completions prompt that ends with the start of its own
  /// answer. This is how a gateway resumes a generation on another replica, and the simulator
  /// answers it as vLLM at temperature 0 would: with the rest of the same answer.
  var continuedTokens = 0
  var maxTokens: Int?
  var choices: Int
  var stream: Bool
  var includeUsage: Bool
  var continuousUsage: Bool
  var fault: Fault?
  /// Per-request pacing from "vllm_sim": {"tokens_per_second": N, "ttft_ms": M}.
  var tokensPerSecond: Double?
  var timeToFirstTokenMilliseconds: Double?
  /// "vllm_sim": {"stamp": true}: every token is a TokenStamp placeholder, stamped as it is sent.
  var stamp: Bool

  /// Nil when the body is not a JSON object.
  init?(body: [UInt8]) {
    guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else { return nil }
    self.object = object
    model = object["model"] as? String
    promptText = Self.text(of: object["messages"] ?? object["prompt"] ?? object["input"] ?? "")
    if object["continue_final_message"] as? Bool == true, let messages = object["messages"] as? [Any],
      let last = messages.last as? [String: Any], last["role"] as? String == "assistant"
    {
      let base = Self.text(of: Array(messages.dropLast()))
      let partial = Self.text(of: last)
      continuedTokens = Generation.leadingTokens(of: partial, answering: base) ?? 0
      if continuedTokens > 0 || partial.isEmpty { promptText = base }
    } else if let prompt = object["prompt"] as? String,
      let split = Generation.continuation(in: prompt)
    {
      promptText = split.base
      continuedTokens = split.tokens
    }
    maxTokens = (object["max_completion_tokens"] ?? object["max_tokens"] ?? object["max_output_tokens"]) as? Int
    choices = max(1, object["n"] as? Int ?? 1)
    stream = object["stream"] as? Bool ?? false
    let options = object["stream_options"] as? [String: Any]
    includeUsage = options?["include_usage"] as? Bool ?? false
    continuousUsage = options?["continuous_usage_stats"] as? Bool ?? false
    fault = Fault(object["vllm_sim"])
    let sim = object["vllm_sim"] as? [String: Any]
    tokensPerSecond = (sim?["tokens_per_second"] as? NSNumber)?.doubleValue
    timeToFirstTokenMilliseconds = (sim?["ttft_ms"] as? NSNumber)?.doubleValue
    stamp = sim?["stamp"] as? Bool ?? false
  }

  private static func text(of value: Any) -> String {
    switch value {
    case let text as String: text
    case let list as [Any]: list.map { text(of: $0) }.joined(separator: " ")
    case let object as [String: Any]: text(of: object["content"] ?? object["text"] ?? "")
    case let number as NSNumber: number.stringValue
    default: ""
    }
  }
}

/// Deterministic "tokens": words picked from a small vocabulary by a hash of the prompt.
enum Generation {
  static let vocabulary = [
    " the", " quick", " brown", " fox", " jumps", " over", " a", " lazy", " dog", " and", " runs", " far",
    " away", " into", " green", " hills", ".", ",", " while", " stars", " shine", " softly", " above", " us",
  ]

  static func tokens(for prompt: String, count: Int, choice: Int = 0) -> [String] {
    let seed = seed(hashing: prompt.utf8, choice: choice)
    return (0..<count).map { vocabulary[tokenIndex(seed, $0)] }
  }

  /// What picks a prompt's answer: FNV-1a over its UTF-8, mixed with the choice.
  private static func seed<Bytes: Sequence<UInt8>>(hashing bytes: Bytes, choice: Int = 0) -> UInt64 {
    var hash = fnvOffset
    for byte in bytes { hash = fnvStep(hash, byte) }
    return mix(hash, choice: choice)
  }

  private static let fnvOffset: UInt64 = 0xcbf2_9ce4_8422_2325

  @inline(__always)
  private static func fnvStep(_ hash: UInt64, _ byte: UInt8) -> UInt64 {
    (hash ^ UInt64(byte)) &* 0x100_0000_01b3
  }

  @inline(__always)
  private static func mix(_ hash: UInt64, choice: Int) -> UInt64 {
    hash &+ UInt64(choice) &* 0x9E37_79B9_7F4A_7C15
  }

  /// The vocabulary index of the answer's token number `index`.
  @inline(__always)
  private static func tokenIndex(_ seed: UInt64, _ index: Int) -> Int {
    Int((seed >> 8 &+ UInt64(index) &* 7) % UInt64(vocabulary.count))
  }

  private static let vocabularyBytes = vocabulary.map { Array($0.utf8) }

  /// How many tokens `text` holds when it is exactly the first tokens of the answer to `prompt`
  /// (choice 0); nil when it is not.
  static func leadingTokens(of text: String, answering prompt: String) -> Int? {
    leadingTokens(of: Array(text.utf8)[...], seed: seed(hashing: prompt.utf8))
  }

  /// The same over bytes, with the prompt's seed: every vocabulary token is ASCII, so comparing
  /// bytes is comparing characters.
  private static func leadingTokens(of text: ArraySlice<UInt8>, seed: UInt64) -> Int? {
    var position = text.startIndex
    var count = 0
    while position < text.endIndex {
      let token = vocabularyBytes[tokenIndex(seed, count)]
      guard text.endIndex - position >= token.count, text[position..<position + token.count].elementsEqual(token)
      else { return nil }
      position += token.count
      count += 1
    }
    return count
  }

  /// A completions prompt that ends with the start of its own answer: the prompt before it and
  /// how many tokens of the answer follow. The longest such ending wins; nil when there is none.
  /// Only the last 2 KiB are searched, which covers the tests' continuations. In one pass over the
  /// UTF-8, the prompt's hash carried from one split to the next: a new String and hash for each
  /// split cost about 170 ms of CPU for a 2,500-byte prompt, enough to make the sim's own timing
  /// depend on how busy the machine was.
  static func continuation(in prompt: String) -> (base: String, tokens: Int)? {
    let bytes = Array(prompt.utf8)
    let first = max(0, bytes.count - 2048)
    var hash = fnvOffset
    for byte in bytes[..<first] { hash = fnvStep(hash, byte) }
    for split in first..<bytes.count {
      // Every vocabulary token starts with a space or a punctuation mark (ASCII, so a split
      // there is a character boundary).
      let byte = bytes[split]
      if byte == UInt8(ascii: " ") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: ",") {
        if let count = leadingTokens(of: bytes[split...], seed: mix(hash, choice: 0)), count > 0 {
          return (String(decoding: bytes[..<split], as: UTF8.self), count)
        }
      }
      hash = fnvStep(hash, byte)
    }
    return nil
  }

  /// A rough token count for a prompt, like a tokenizer would give.
  static func promptTokens(_ prompt: String) -> Int {
    max(1, prompt.utf8.count / 4) + 8
  }

  static func identifier(_ prefix: String) -> String {
    prefix + String(UInt64.random(in: 0...UInt64.max), radix: 16)
  }
}
