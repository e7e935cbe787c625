import Foundation
import Testing

@testable import Gateway

/// Usage is found by searching back from the end of vLLM's answer; these are the answers it
/// must read right, and the look-alikes it must not be fooled by.
@Suite struct TokenUsageTests {
  private func usage(_ json: String) -> TokenUsage { TokenUsage(in: Array(json.utf8)) }

  /// Each exchange recorded with a real vLLM: its file name and text. (Lines end in CRLF in
  /// some, which Swift takes as one Character: split them with `isNewline`.)
  static func recordings() throws -> [(name: String, text: String)] {
    let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("tests/fixtures/vllm-recordings")
    return try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".http") }.map {
      ($0, try String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8))
    }
  }

  @Test func chatCompletionUsageAfterTheChoices() {
    let body = #"""
      {"id":"chatcmpl-1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"total_tokens":19,"completion_tokens":7,"prompt_tokens_details":null},"prompt_logprobs":null,"kv_transfer_params":null}
      """#
    #expect(usage(body) == TokenUsage(prompt: 12, completion: 7))
  }

  @Test func spacedJSONAndNestedDetails() {
    let body =
      #"{"usage": {"prompt_tokens_details": {"cached_tokens": 3}, "prompt_tokens" : 40, "completion_tokens": 2}}"#
    #expect(usage(body) == TokenUsage(prompt: 40, completion: 2))
  }

  @Test func responsesUsageInsideTheCompletedEvent() {
    let event = #"""
      {"type":"response.completed","response":{"id":"r","output":[],"usage":{"input_tokens":5,"input_tokens_details":{"cached_tokens":0},"output_tokens":9,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":14}}}
      """#
    #expect(usage(event) == TokenUsage(prompt: 5, completion: 9))
  }

  @Test func generatedTextThatSpellsUsageIsNotUsage() {
    // The text mentions "usage" in quotes, escaped as JSON requires; the real usage is null.
    let body = #"""
      {"choices":[{"text":"say \"usage\":{\"prompt_tokens\":999} and \\\"usage\\\":{}"}],"usage":null}
      """#
    #expect(usage(body) == TokenUsage())
  }

  @Test func aNullUsageAfterARealOneFallsBackToTheRealOne() {
    #expect(
      usage(#"{"usage":{"prompt_tokens":1,"completion_tokens":2},"x":{"usage":null}}"#)
        == TokenUsage(prompt: 1, completion: 2))
  }

  @Test func nothingToReadIsZero() {
    for body in [
      "", "{}", "not json", #"{"usage":"#, #"{"usage":{"prompt_tokens":3"#, #""usage""#, "[DONE]", #"{"usage":[1]}"#,
    ] {
      #expect(usage(body) == TokenUsage(), "\(body)")
    }
  }

  /// The backwards search skips up to seven places, by where the byte it looks at sits in
  /// `"usage"`. Whatever the key's object starts with and whatever follows it, so wherever the
  /// search lands on its way back, the key is found; a key spelled in generated text after it is
  /// not taken for it.
  @Test(arguments: [
    "", "x", "e", "s\\\"", "usage", "egasu", "0123456789", "zzzzzzzz\\\"usage\\\":{}", "ag", "gas", "sea", "uuuu",
    "usag", "sage\\\"", "a\\\"usage",
  ])
  func theKeyIsFoundWhateverSurroundsIt(_ filler: String) {
    for repeats in 0..<4 {
      for padding in 0..<15 {
        let first = String(repeating: "x", count: padding)
        let tail = String(repeating: filler, count: repeats)
        let body = #"{"usage":{""# + first + #"":1,"prompt_tokens":3,"completion_tokens":4},"after":""# + tail + #""}"#
        #expect(usage(body) == TokenUsage(prompt: 3, completion: 4), "\(body)")
      }
    }
  }

  /// A stream's usage is read as its events pass, skipping the events that end with their
  /// `choices` (the chunks of text): every stream a real vLLM sent must give the same usage as
  /// reading every event would, including usage followed by other members (system_fingerprint).
  @Test func eventsSkippedAsTheyPassNeverHoldTheUsage() throws {
    var streamsWithUsage = 0
    var eventsSkipped = 0
    for (name, text) in try Self.recordings() {
      let events = text.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("data: {") }.map {
        Array($0.dropFirst(6).utf8)
      }
      var everyEvent: TokenUsage? = nil
      var asTheyPass: TokenUsage? = nil
      for event in events {
        let found = TokenUsage.last(in: event)
        if let found { everyEvent = found }
        if TokenUsage.mayBeIn(event: event.span) {
          if let found { asTheyPass = found }
        } else {
          eventsSkipped += 1
          #expect(found == nil, "\(name): a skipped event has usage")
        }
      }
      #expect(asTheyPass == everyEvent, "\(name)")
      if everyEvent != nil && events.count > 1 { streamsWithUsage += 1 }
    }
    #expect(streamsWithUsage >= 5 && eventsSkipped >= 100, "\(streamsWithUsage) streams, \(eventsSkipped) skipped")
  }

  @Test func onlyEventsEndingWithTheirChoicesAreSkipped() {
    let skipped = [#"{"choices":[{"delta":{"content":"x"}}]}"#, "{\"choices\":[] } \n"]
    let read = [
      #"{"choices":[],"usage":{"prompt_tokens":1},"system_fingerprint":"f"}"#, #"{"usage":{"prompt_tokens":1}}"#,
      #"{"type":"response.completed"}"#, "not json", "]",
    ]
    for event in skipped {
      let mayBeIn = TokenUsage.mayBeIn(event: Array(event.utf8).span)
      #expect(!mayBeIn, "\(event)")
    }
    for event in read {
      let mayBeIn = TokenUsage.mayBeIn(event: Array(event.utf8).span)
      #expect(mayBeIn, "\(event)")
    }
  }

  /// vLLM's own form is read by comparing its keys in place; any other falls to the general
  /// scan. Every answer and event a real vLLM sent gives the counts a JSON parser finds, and
  /// most of the usages among them take the quick way.
  @Test func everyRecordedUsageReadsAsAJSONParserReadsIt() throws {
    var compared = 0
    var quick = 0
    for (name, text) in try Self.recordings() {
      guard let response = text.components(separatedBy: "### RESPONSE").last else { continue }
      let answers = response.split(whereSeparator: \.isNewline).compactMap { line -> Substring? in
        if line.hasPrefix("data: {") { return line.dropFirst(6) }
        return line.hasPrefix("{") ? line : nil
      }
      for answer in answers {
        let bytes = Array(answer.utf8)
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else { continue }
        let usage =
          object["usage"] as? [String: Any] ?? (object["response"] as? [String: Any])?["usage"] as? [String: Any]
        guard let usage else { continue }
        let expected = TokenUsage(
          prompt: (usage["prompt_tokens"] ?? usage["input_tokens"]) as? Int ?? 0,
          completion: (usage["completion_tokens"] ?? usage["output_tokens"]) as? Int ?? 0)
        #expect(TokenUsage(in: bytes) == expected, "\(name): \(answer)")
        compared += 1
        if let key = bytes.indices.last(where: { bytes[$0...].starts(with: Array(#""usage":{"#.utf8)) }),
          TokenUsage.vllmUsage(bytes, objectAt: key + 8) != nil
        {
          quick += 1
        }
      }
    }
    #expect(compared >= 60 && quick >= compared / 2, "\(compared) usages, \(quick) the quick way")
  }

  @Test func nearMissesOfVLLMsFormReadTheGeneralWay() {
    let cases: [(String, TokenUsage)] = [
      (#"{"usage":{"prompt_tokens":5,"total_tokens":5}}"#, TokenUsage(prompt: 5)),
      (#"{"usage":{"prompt_tokens":5,"total_tokens":6,"completion_tokens":1}}"#, TokenUsage(prompt: 5, completion: 1)),
      (#"{"usage":{"prompt_tokens":,"completion_tokens":1}}"#, TokenUsage(completion: 1)),
      (#"{"usage":{"prompt_tokens":5,"total_tokens":6,"completion_tokens":"x"}}"#, TokenUsage(prompt: 5)),
      (#"{"usage":{"prompt_tokens":5,"total_tokens":6,"completion_tok"#, TokenUsage()),
      (#"{"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#, TokenUsage(prompt: 5, completion: 2)),
    ]
    for (body, expected) in cases {
      #expect(usage(body) == expected, "\(body)")
    }
  }
}
