import Foundation

/// What the simulator reads from a request body.
struct SimulatedRequest {
  var object: [String: Any]
  var model: String?
  /// The text the output is derived from, so the same prompt always gets the same answer.
  var promptText: String
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
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in prompt.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
    hash = hash &+ UInt64(choice) &* 0x9E37_79B9_7F4A_7C15
    return (0..<count).map { index in
      vocabulary[Int((hash >> 8 &+ UInt64(index) &* 7) % UInt64(vocabulary.count))]
    }
  }

  /// A rough token count for a prompt, like a tokenizer would give.
  static func promptTokens(_ prompt: String) -> Int {
    max(1, prompt.utf8.count / 4) + 8
  }

  static func identifier(_ prefix: String) -> String {
    prefix + String(UInt64.random(in: 0...UInt64.max), radix: 16)
  }
}
