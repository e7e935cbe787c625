import Testing

@testable import ProtoJSON

/// The reader compares keys and scans plain strings eight bytes at a time: these hold it to what
/// a byte at a time gives, for every length around a word and every position of the byte that
/// matters.
@Suite struct JSONReaderWordScanTests {
  /// Each byte that ends a plain string or stops it being plain, and bytes that look close to
  /// them: beyond ASCII, just above the control range, just above and below the quote.
  static let probes: [UInt8] = [
    0x22, 0x5C, 0x00, 0x1F, 0x0A, 0x20, 0x21, 0x23, 0x5B, 0x5D, 0x7F, 0x80, 0xA2, 0xDC, 0xFF,
  ]

  @Test func plainStringsEndWhereAByteLoopSaysSo() throws {
    for length in 0...19 {
      for position in 0...length {
        for probe in Self.probes {
          var content = [UInt8](repeating: UInt8(ascii: "a"), count: length)
          if position < length { content[position] = probe }
          let text = [UInt8(ascii: "\"")] + content + [UInt8(ascii: "\"")] + Array(",\"next\"".utf8)
          var reader = JSONReader(text)
          let expected = Self.plainRange(of: text)
          let range = try reader.readPlainStringRange()
          #expect(range == expected, "length \(length), byte \(probe) at \(position)")
          if let expected {
            #expect(reader.index == expected.upperBound + 1)
          } else {
            #expect(reader.index == 0, "nothing consumed for a string that is not plain")
          }
        }
      }
    }
  }

  @Test func anUnterminatedStringFailsWhateverItsLength() {
    for length in 0...19 {
      let reader = JSONReader([UInt8(ascii: "\"")] + [UInt8](repeating: UInt8(ascii: "b"), count: length))
      #expect(throws: JSONReader.Failure.self) {
        var unterminated = reader
        _ = try unterminated.readPlainStringRange()
      }
    }
  }

  @Test func spansAreEqualExactlyWhenEveryByteIs() {
    for length in 0...25 {
      let base = (0..<length).map { UInt8(truncatingIfNeeded: 0x41 &+ $0) }
      let sameAsItself = base.span.hasSameBytes(as: base.span)
      #expect(sameAsItself)
      for position in 0..<length {
        for flip: UInt8 in [0x01, 0x80, 0x20] {
          var other = base
          other[position] ^= flip
          let same = base.span.hasSameBytes(as: other.span)
          #expect(!same, "length \(length), differing at \(position)")
        }
      }
      let longer = base + [0x41]
      let sameAsLonger = base.span.hasSameBytes(as: longer.span)
      #expect(!sameAsLonger)
    }
  }

  @Test func aKeyIsConsumedOnlyWhenItMatchesExactly() {
    let patterns = Array("\"finish_reason\":\"id\":".utf8)
    var reader = JSONReader(Array("\"finish_reason\":null".utf8))
    let other = reader.consumeKey(patterns, 16..<21)
    #expect(!other)
    let itself = reader.consumeKey(patterns, 0..<16)
    #expect(itself)
    #expect(reader.index == 16)
    var near = JSONReader(Array("\"finish_reasom\":null".utf8))
    let nearMiss = near.consumeKey(patterns, 0..<16)
    #expect(!nearMiss)
    #expect(near.index == 0)
    var short = JSONReader(Array("\"finish".utf8))
    let truncated = short.consumeKey(patterns, 0..<16)
    #expect(!truncated)
  }

  /// The reference: a plain string's content range, or nil when it has an escape or a control
  /// byte before its closing quote, or no closing quote.
  static func plainRange(of text: [UInt8]) -> Range<Int>? {
    for index in 1..<text.count {
      let byte = text[index]
      if byte == UInt8(ascii: "\"") { return 1..<index }
      if byte == UInt8(ascii: "\\") || byte < 0x20 { return nil }
    }
    return nil
  }
}
