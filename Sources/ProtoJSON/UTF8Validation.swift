/// Strict UTF-8 checking for the canonical JSON codec: proto3 strings must be valid UTF-8, so
/// invalid input is refused rather than repaired (as vLLM's translation does).
enum UTF8Validation {
  /// The offset of the first byte that does not begin a valid UTF-8 sequence, or nil when all do.
  static func firstInvalidOffset<Bytes: RandomAccessCollection<UInt8>>(_ bytes: Bytes) -> Int?
  where Bytes.Index == Int {
    var index = bytes.startIndex
    let end = bytes.endIndex
    while index < end {
      let lead = bytes[index]
      if lead < 0x80 {
        index += 1
        continue
      }
      // The sequence's length, and the range its second byte must fall in: that range rules out
      // overlong forms, surrogates and code points above U+10FFFF.
      let length: Int
      var secondRange: ClosedRange<UInt8> = 0x80...0xBF
      switch lead {
      case 0xC2...0xDF: length = 2
      case 0xE0:
        length = 3
        secondRange = 0xA0...0xBF
      case 0xE1...0xEC, 0xEE...0xEF: length = 3
      case 0xED:
        length = 3
        secondRange = 0x80...0x9F
      case 0xF0:
        length = 4
        secondRange = 0x90...0xBF
      case 0xF1...0xF3: length = 4
      case 0xF4:
        length = 4
        secondRange = 0x80...0x8F
      default: return index - bytes.startIndex
      }
      guard end - index >= length, secondRange.contains(bytes[index + 1]) else { return index - bytes.startIndex }
      for offset in 2..<length where bytes[index + offset] & 0xC0 != 0x80 { return index - bytes.startIndex }
      index += length
    }
    return nil
  }

  static func isValid<Bytes: RandomAccessCollection<UInt8>>(_ bytes: Bytes) -> Bool where Bytes.Index == Int {
    firstInvalidOffset(bytes) == nil
  }
}
