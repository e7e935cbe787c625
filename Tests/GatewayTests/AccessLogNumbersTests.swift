import Testing

@testable import Gateway

/// The numbers that end a log line: counts in decimal, microseconds as milliseconds with exactly
/// three places (every fraction from .000 to .999, which a byte-sized fraction got wrong above
/// .255), and the time to first token only when there was one.
@Suite struct AccessLogNumbersTests {
  private func written(
    _ prompt: Int, _ completion: Int, _ duration: UInt64, _ firstToken: UInt64?, endingLine: Bool = false
  ) -> String {
    var lines = Array("x".utf8)
    AccessLogNumbers.append(
      to: &lines, promptTokens: prompt, completionTokens: completion, duration: duration, firstToken: firstToken,
      endingLine: endingLine)
    return String(decoding: lines, as: UTF8.self)
  }

  @Test func theLinesEndWhenAsked() {
    #expect(written(1, 2, 3_000, nil, endingLine: true) == "x1,\"completion_tokens\":2,\"duration_ms\":3.000}\n")
    // The widest numbers and the end still fit the room reserved.
    #expect(
      written(Int.max, Int.max, UInt64.max, UInt64.max, endingLine: true)
        == #"x9223372036854775807,"completion_tokens":9223372036854775807,"duration_ms":18446744073709551.615,"#
        + #""ttft_ms":18446744073709551.615}"# + "\n")
  }

  @Test func countsAndMilliseconds() {
    #expect(written(0, 0, 0, nil) == #"x0,"completion_tokens":0,"duration_ms":0.000"#)
    #expect(written(13, 5, 1_999, 1_256) == #"x13,"completion_tokens":5,"duration_ms":1.999,"ttft_ms":1.256"#)
    #expect(written(-1, 7, 302_210, 87) == #"x0,"completion_tokens":7,"duration_ms":302.210,"ttft_ms":0.087"#)
    #expect(
      written(Int.max, 1_000_000, UInt64.max, 1_000_000)
        == #"x9223372036854775807,"completion_tokens":1000000,"duration_ms":18446744073709551.615,"ttft_ms":1000.000"#)
    // The longest line: every number at its widest, within the room reserved for it.
    #expect(
      written(Int.max, Int.max, UInt64.max, UInt64.max)
        == #"x9223372036854775807,"completion_tokens":9223372036854775807,"duration_ms":18446744073709551.615,"#
        + #""ttft_ms":18446744073709551.615"#)
  }

  @Test func everyFractionHasItsThreePlaces() {
    for fraction: UInt64 in 0..<1000 {
      let expected = "42." + String(repeating: "0", count: 3 - String(fraction).count) + String(fraction)
      #expect(written(1, 1, 42_000 + fraction, nil).hasSuffix(#""duration_ms":"# + expected))
    }
  }
}
