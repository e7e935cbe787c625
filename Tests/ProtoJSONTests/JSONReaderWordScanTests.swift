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

  /// Lengths around one, two and several words and sixteen-byte blocks, and several steps of
  /// two blocks.
  @Test func spansAreEqualExactlyWhenEveryByteIs() {
    for length in 0...120 {
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
      // Runs inside larger arrays, loaded unaligned.
      let padded = [0, 0, 0] + base + [0]
      let unaligned = padded.span.extracting(3..<3 + length).hasSameBytes(as: base.span)
      #expect(unaligned)
      let longer = base + [0x41]
      let sameAsLonger = base.span.hasSameBytes(as: longer.span)
      #expect(!sameAsLonger)
    }
  }

  /// Keys of every length around one and two words, at the end of the input (where no word can
  /// be loaded) and before more: consumed when every byte matches, untouched when any differs.
  @Test func aKeyIsConsumedOnlyWhenItMatchesExactly() {
    let names = (0...22).map { length in (0..<length).map { UInt8(truncatingIfNeeded: 0x61 &+ $0) } }
    let (patterns, patternBytes) = KeyPattern.patterns(for: [Array("other".utf8)] + names)
    for (name, key) in zip(names, patterns.dropFirst()) {
      let quoted = [UInt8(ascii: "\"")] + name + Array(#"":"#.utf8)
      for after in [Array("1}".utf8), Array("null,\"next\":1}".utf8)] {
        var reader = JSONReader(quoted + after)
        let consumed = reader.consumeKey(key, in: patternBytes)
        #expect(consumed, "\(name.count) bytes before \(after.count)")
        #expect(reader.index == quoted.count)
        var other = JSONReader(quoted + after)
        let otherConsumed = other.consumeKey(patterns[0], in: patternBytes)
        #expect(!otherConsumed && other.index == 0)
        for position in 0..<quoted.count {
          var differing = quoted
          differing[position] ^= 0x04
          var near = JSONReader(differing + after)
          let nearConsumed = near.consumeKey(key, in: patternBytes)
          #expect(!nearConsumed, "\(name.count) bytes, differing at \(position)")
          #expect(near.index == 0)
        }
      }
      var truncated = JSONReader(Array(quoted.dropLast()))
      let truncatedConsumed = truncated.consumeKey(key, in: patternBytes)
      #expect(!truncatedConsumed)
    }
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
