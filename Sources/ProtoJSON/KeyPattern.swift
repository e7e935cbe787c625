/// A JSON key as a schema spells it, in quotes and followed by ':', ready to be compared in place
/// with the bytes a reader is at: one word for keys of up to 8 bytes, two up to 16; longer keys
/// are ruled out by their first word, and compared byte for byte only when it matches. A chat
/// chunk's keys are 5 to 16 bytes.
struct KeyPattern: Sendable {
  /// The whole pattern's length, quotes and colon included.
  let length: Int
  /// Where the pattern lies in its schema's flat `keyPatternBytes`, for the middle of long keys
  /// and for a comparison near the end of the input, where a word cannot be loaded.
  let start: Int
  /// The first (up to) eight bytes, the first in the lowest bits, and which bits hold them.
  let head: UInt64
  let headMask: UInt64
  /// The last eight bytes, for patterns of 9 to 16 bytes (longer ones compare all their bytes).
  let tail: UInt64

  init(_ pattern: [UInt8], at start: Int) {
    length = pattern.count
    self.start = start
    head = Self.word(pattern.prefix(8))
    headMask = pattern.count >= 8 ? .max : (1 << (8 * UInt64(pattern.count))) &- 1
    tail = pattern.count > 8 ? Self.word(pattern.suffix(8)) : 0
  }

  /// Up to eight bytes as a word, the first in the lowest bits: what `RawSpan.word(at:)` loads,
  /// read as little-endian.
  private static func word(_ bytes: ArraySlice<UInt8>) -> UInt64 {
    bytes.reversed().reduce(0) { word, byte in word << 8 | UInt64(byte) }
  }

  /// Patterns for `names`, end to end in `bytes` (which the patterns' `start`s point into).
  static func patterns(for names: [[UInt8]]) -> (patterns: [KeyPattern], bytes: [UInt8]) {
    var bytes: [UInt8] = []
    var patterns: [KeyPattern] = []
    for name in names {
      let pattern = [UInt8(ascii: "\"")] + name + Array(#"":"#.utf8)
      patterns.append(KeyPattern(pattern, at: bytes.count))
      bytes += pattern
    }
    return (patterns, bytes)
  }
}
