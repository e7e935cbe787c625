import Testing

@testable import ProtoJSON

/// `string(utf8:_:)` finds plain ASCII eight bytes at a time and copies it; everything else must
/// come out exactly as the general `string(utf8:)` writes it (escaped, or repaired to UTF-8).
@Suite struct JSONWriterPlainStringTests {
  /// Bytes that must stop the copy (quote, backslash, controls, beyond ASCII, invalid UTF-8) and
  /// bytes next to them that must not.
  static let probes: [UInt8] = [
    0x22, 0x5C, 0x00, 0x1F, 0x0A, 0x09, 0x20, 0x21, 0x23, 0x5B, 0x5D, 0x7F, 0x80, 0xC3, 0xFF,
  ]

  @Test func everyStringIsWrittenAsTheGeneralPathWritesIt() {
    for length in 0...19 {
      for position in 0...length {
        for probe in Self.probes {
          var content = (0..<length).map { UInt8(ascii: "a") &+ UInt8($0 % 26) }
          if position < length { content[position] = probe }
          // Content in the middle of a larger message, as a field's bytes lie on the wire.
          let source: [UInt8] = [0x0A, UInt8(length)] + content + [0x12, 0x00]
          let range = 2..<(2 + length)
          var fast = JSONWriter()
          fast.beginArray()
          fast.string(utf8: source, range)
          fast.endArray()
          var general = JSONWriter()
          general.beginArray()
          general.string(utf8: source[range])
          general.endArray()
          #expect(fast.bytes == general.bytes, "length \(length), byte \(probe) at \(position)")
        }
      }
    }
  }

  @Test func plainASCIIIsToldApartFromEverythingElse() {
    for length in 1...19 {
      for position in 0..<length {
        for probe in Self.probes {
          var content = [UInt8](repeating: UInt8(ascii: "m"), count: length)
          content[position] = probe
          let plain = probe >= 0x20 && probe < 0x80 && probe != 0x22 && probe != 0x5C
          let found = JSONWriter.isPlainASCII(content, 0..<length)
          #expect(found == plain, "length \(length), byte \(probe) at \(position)")
        }
      }
    }
  }

  /// The last few bytes are read as a word with bytes around the string: those must not count.
  @Test func bytesAroundTheStringDoNotCount() {
    for length in 0...19 {
      for probe in Self.probes {
        let around = [UInt8](repeating: probe, count: 9)
        let content = (0..<length).map { UInt8(ascii: "a") &+ UInt8($0 % 26) }
        let source = around + content + around
        #expect(JSONWriter.isPlainASCII(source, 9..<(9 + length)), "length \(length), byte \(probe) around")
        var last = content
        if length > 0 {
          last[length - 1] = UInt8(ascii: "\"")
          #expect(!JSONWriter.isPlainASCII(around + last + around, 9..<(9 + length)), "length \(length), quote last")
        }
      }
    }
  }
}
