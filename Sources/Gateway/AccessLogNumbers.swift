/// The numbers that end an access log line: `<prompt>,"completion_tokens":<n>,"duration_ms":<ms>`
/// and `,"ttft_ms":<ms>` when the call had a first token, durations in microseconds written as
/// milliseconds with three places. One reservation, then bytes stored: through a JSON writer,
/// each digit was an append that checked the shared array's uniqueness and room (callgrind).
enum AccessLogNumbers {
  private enum Keys {
    static let completionTokens = Key(#","completion_tokens":"#)
    static let duration = Key(#","duration_ms":"#)
    static let firstToken = Key(#","ttft_ms":"#)
  }

  /// A key's bytes as three words, stored whole: byte by byte, the keys of a line cost about 300
  /// instructions (callgrind).
  struct Key {
    let words: (UInt64, UInt64, UInt64)
    let count: Int

    init(_ text: String) {
      precondition(text.utf8.count <= 24, "an access log key of more than three words")
      var words: [UInt64] = [0, 0, 0]
      for (index, byte) in text.utf8.enumerated() {
        words[index / 8] |= UInt64(byte) << (8 * UInt64(index % 8))
      }
      // Stored in memory order: byte 0 first whatever the machine's order.
      self.words = (words[0].littleEndian, words[1].littleEndian, words[2].littleEndian)
      count = text.utf8.count
    }

    /// Appends the key to `output`, which must have room for 24 bytes.
    func append(to output: inout OutputSpan<UInt8>) {
      let start = output.count
      output.append(repeating: 0, count: 24)
      do {
        var written = output.mutableSpan
        var bytes = written.mutableBytes
        bytes.storeBytes(of: words.0, toByteOffset: start, as: UInt64.self)
        bytes.storeBytes(of: words.1, toByteOffset: start + 8, as: UInt64.self)
        bytes.storeBytes(of: words.2, toByteOffset: start + 16, as: UInt64.self)
      }
      output.removeLast(24 - count)
    }
  }

  /// Appends the numbers to `lines`; `duration` and `firstToken` in microseconds.
  static func append(
    to lines: inout [UInt8], promptTokens: Int, completionTokens: Int, duration: UInt64, firstToken: UInt64?,
    endingLine: Bool = false
  ) {
    // Room for each key's three words and 20 digits, a point and three places per number, and
    // the line's end.
    let room = 4 * 24 + 3 * 24 + 2
    lines.append(addingCapacity: room) { output in
      appendDigits(UInt64(max(promptTokens, 0)), to: &output)
      Keys.completionTokens.append(to: &output)
      appendDigits(UInt64(max(completionTokens, 0)), to: &output)
      Keys.duration.append(to: &output)
      appendThousandths(duration, to: &output)
      if let firstToken {
        Keys.firstToken.append(to: &output)
        appendThousandths(firstToken, to: &output)
      }
      if endingLine {
        output.append(UInt8(ascii: "}"))
        output.append(UInt8(ascii: "\n"))
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

  /// The digits written from the last: divisions by the constant 10 (a multiply and a shift),
  /// where finding the leading digit's power of ten first took a hardware division a digit.
  private static func appendDigits(_ value: UInt64, to output: inout OutputSpan<UInt8>) {
    // Most counts and milliseconds have one or two digits.
    if value < 10 {
      output.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: value))
      return
    }
    if value < 100 {
      output.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: value / 10))
      output.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: value % 10))
      return
    }
    var count = 1
    var rest = value
    while rest >= 10 {
      rest /= 10
      count += 1
    }
    let start = output.count
    output.append(repeating: UInt8(ascii: "0"), count: count)
    var digits = output.mutableSpan
    rest = value
    for index in (start..<(start + count)).reversed() {
      digits[index] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10)
      rest /= 10
    }
  }
}
