/// The numbers that end an access log line: `<prompt>,"completion_tokens":<n>,"duration_ms":<ms>`
/// and `,"ttft_ms":<ms>` when the call had a first token, durations in microseconds written as
/// milliseconds with three places. One reservation, then bytes stored: through a JSON writer,
/// each digit was an append that checked the shared array's uniqueness and room (callgrind).
enum AccessLogNumbers {
  private enum Keys {
    static let completionTokens = Array(#","completion_tokens":"#.utf8)
    static let duration = Array(#","duration_ms":"#.utf8)
    static let firstToken = Array(#","ttft_ms":"#.utf8)
  }

  /// Appends the numbers to `lines`; `duration` and `firstToken` in microseconds.
  static func append(
    to lines: inout [UInt8], promptTokens: Int, completionTokens: Int, duration: UInt64, firstToken: UInt64?
  ) {
    // Room for each key and 20 digits, a point and three places per number.
    let room = 4 * 24 + Keys.completionTokens.count + Keys.duration.count + Keys.firstToken.count
    lines.append(addingCapacity: room) { output in
      appendDigits(UInt64(max(promptTokens, 0)), to: &output)
      for byte in Keys.completionTokens { output.append(byte) }
      appendDigits(UInt64(max(completionTokens, 0)), to: &output)
      for byte in Keys.duration { output.append(byte) }
      appendThousandths(duration, to: &output)
      if let firstToken {
        for byte in Keys.firstToken { output.append(byte) }
        appendThousandths(firstToken, to: &output)
      }
    }
  }

  private static func appendThousandths(_ value: UInt64, to output: inout OutputSpan<UInt8>) {
    appendDigits(value / 1000, to: &output)
    let fraction = value % 1000
    output.append(UInt8(ascii: "."))
    output.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: fraction / 100))
    output.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: fraction / 10 % 10))
    output.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: fraction % 10))
  }

  private static func appendDigits(_ value: UInt64, to output: inout OutputSpan<UInt8>) {
    var divisor: UInt64 = 1
    while value / divisor >= 10 { divisor *= 10 }
    var rest = value
    while divisor > 0 {
      output.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest / divisor))
      rest %= divisor
      divisor /= 10
    }
  }
}
