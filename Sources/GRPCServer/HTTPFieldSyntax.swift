/// Which bytes HTTP/2 lets a header field's name, value and request pseudo-headers hold (RFC
/// 9113 section 8.2.1, RFC 9110's token, and RFC 3986 for an authority), as nghttp2's HTTP
/// messaging checked them: the sets are the same as its tables, so a request it reset is reset
/// here too.
enum HTTPFieldSyntax {
  /// A name: lower-case token characters only (an upper-case letter makes a request malformed).
  static func isValidName(_ name: UnsafeRawBufferPointer) -> Bool {
    !name.isEmpty && all(of: name, in: lowerCaseToken) { isLowerCaseWord($0) }
  }

  /// A value: no control character but horizontal tab, no DEL, and no space or tab at either end.
  static func isValidValue(_ value: UnsafeRawBufferPointer) -> Bool {
    guard let first = value.first, let last = value.last else { return true }
    guard first != space, first != tab, last != space, last != tab else { return false }
    return hasOnlyVisibleBytes(value, lowest: space) || all(of: value, in: fieldValue)
  }

  /// `:method`: a token (letters of either case).
  static func isValidMethod(_ value: UnsafeRawBufferPointer) -> Bool {
    !value.isEmpty && all(of: value, in: token)
  }

  /// `:path`: visible bytes, no space (whether it is a path at all is checked at the end).
  static func isValidPath(_ value: UnsafeRawBufferPointer) -> Bool {
    hasOnlyVisibleBytes(value, lowest: space &+ 1)
  }

  /// `:authority` and `host`: what a URI's authority may hold.
  static func isValidAuthority(_ value: UnsafeRawBufferPointer) -> Bool {
    all(of: value, in: authority) { isHostWord($0) }
  }

  /// `:scheme`: a letter, then letters, digits, `+`, `-` or `.`.
  static func isValidScheme(_ value: UnsafeRawBufferPointer) -> Bool {
    guard let first = value.first, letters.contains(first) else { return false }
    return all(of: UnsafeRawBufferPointer(rebasing: value.dropFirst()), in: scheme)
  }

  @inline(__always)
  private static func all(of bytes: UnsafeRawBufferPointer, in set: ByteSet) -> Bool {
    all(of: bytes, in: set) { _ in false }
  }

  /// Whether every byte is in `set`, eight a step where `isCommonWord` vouches for a word (the
  /// bytes most names or authorities are made of): a lookup a byte cost about 16 instructions
  /// (callgrind). Eight or more bytes end with a last word that overlaps the one before.
  @inline(__always)
  private static func all(
    of bytes: UnsafeRawBufferPointer, in set: ByteSet, orCommon isCommonWord: (UInt64) -> Bool
  ) -> Bool {
    let count = bytes.count
    guard count >= 8 else { return allBytes(of: bytes, from: 0, to: count, in: set) }
    var index = 0
    while true {
      let start = Swift.min(index, count &- 8)
      let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: start, as: UInt64.self))
      guard isCommonWord(word) || allBytes(of: bytes, from: start, to: start &+ 8, in: set) else { return false }
      if start == count &- 8 { return true }
      index &+= 8
    }
  }

  @inline(__always)
  private static func allBytes(of bytes: UnsafeRawBufferPointer, from start: Int, to end: Int, in set: ByteSet) -> Bool
  {
    var index = start
    while index < end {
      guard set.contains(bytes[index]) else { return false }
      index &+= 1
    }
    return true
  }

  private static let highBits: UInt64 = 0x8080_8080_8080_8080

  /// For a word of eight bytes below 0x80, the top bit of each byte from `low` through `high`:
  /// adding `0x80 - low` sets it exactly when the byte is at least `low`, and no sum carries
  /// into the next byte.
  @inline(__always)
  private static func bytes(of word: UInt64, from low: UInt8, through high: UInt8) -> UInt64 {
    let atLeastLow = (word &+ 0x0101_0101_0101_0101 &* UInt64(0x80 &- low)) & highBits
    let aboveHigh = (word &+ 0x0101_0101_0101_0101 &* UInt64(0x7F &- high)) & highBits
    return atLeastLow & ~aboveHigh
  }

  /// Eight of `a-z`, `0-9` and `-`: a name.
  @inline(__always)
  private static func isLowerCaseWord(_ word: UInt64) -> Bool {
    isWord(word, digitsThrough: UInt8(ascii: "9"), or: UInt8(ascii: "-"))
  }

  /// Eight of `a-z`, `0-9`, `:` and `.`: a host name or address and its port.
  @inline(__always)
  private static func isHostWord(_ word: UInt64) -> Bool {
    isWord(word, digitsThrough: UInt8(ascii: ":"), or: UInt8(ascii: "."))
  }

  /// Eight bytes each of `a-z`, `0` through `lastDigit`, or `extra`.
  @inline(__always)
  private static func isWord(_ word: UInt64, digitsThrough lastDigit: UInt8, or extra: UInt8) -> Bool {
    guard word & highBits == 0 else { return false }
    let found =
      bytes(of: word, from: UInt8(ascii: "a"), through: UInt8(ascii: "z"))
      | bytes(of: word, from: UInt8(ascii: "0"), through: lastDigit)
      | bytes(of: word, from: extra, through: extra)
    return found == highBits
  }

  /// Whether no byte is below `lowest` (a space, or one past it) or is DEL; bytes from 0x80 are
  /// allowed. Eight bytes a step: most values are a user-agent, a key or a path, and a table
  /// lookup a byte cost about five instructions (callgrind).
  private static func hasOnlyVisibleBytes(_ bytes: UnsafeRawBufferPointer, lowest: UInt8) -> Bool {
    let below = 0x0101_0101_0101_0101 &* UInt64(lowest)
    let deletes = 0x7F7F_7F7F_7F7F_7F7F as UInt64
    var index = 0
    while index &+ 8 <= bytes.count {
      let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
      // A byte below `lowest` borrows into its top bit where the byte's own top bit was clear;
      // a DEL is a zero byte of `word ^ deletes`. Exact for "is there one": a borrow reaches a
      // higher byte only past a byte that was itself below.
      let low = (word &- below) & ~word
      let delete = ((word ^ deletes) &- 0x0101_0101_0101_0101) & ~(word ^ deletes)
      if (low | delete) & 0x8080_8080_8080_8080 != 0 { return false }
      index &+= 8
    }
    while index < bytes.count {
      let byte = bytes[index]
      if byte < lowest || byte == 0x7F { return false }
      index &+= 1
    }
    return true
  }

  private static let space = UInt8(ascii: " ")
  private static let tab = UInt8(ascii: "\t")

  // The sets as masks of their bytes, written out so that they are constants rather than
  // globals made on first use (each use checked that they were made); HTTPRequestRulesTests
  // checks every byte of each against its definition.
  /// `a-z`, `0-9` and ``!#$%&'*+-.^_`|~``.
  private static let lowerCaseToken = ByteSet(0x03FF_6CFA_0000_0000, 0x57FF_FFFF_C000_0000, 0, 0)
  /// The same and `A-Z`.
  private static let token = ByteSet(0x03FF_6CFA_0000_0000, 0x57FF_FFFF_C7FF_FFFE, 0, 0)
  /// Tab, space to `~`, and every byte from 0x80.
  private static let fieldValue = ByteSet(0xFFFF_FFFF_0000_0200, 0x7FFF_FFFF_FFFF_FFFF, ~0, ~0)
  /// Letters, digits and `-._~!$&'()*+,;=:%@[]`.
  private static let authority = ByteSet(0x2FFF_7FF2_0000_0000, 0x47FF_FFFE_AFFF_FFFF, 0, 0)
  /// Letters, digits and `+-.`.
  private static let scheme = ByteSet(0x03FF_6800_0000_0000, 0x07FF_FFFE_07FF_FFFE, 0, 0)
  private static let letters = ByteSet(0, 0x07FF_FFFE_07FF_FFFE, 0, 0)
}

/// A set of bytes as four 64-bit masks (bytes 0-63, 64-127, 128-191, 192-255): a membership
/// test is a shift and a mask.
struct ByteSet: Sendable {
  private let words: (UInt64, UInt64, UInt64, UInt64)

  init(_ word0: UInt64, _ word1: UInt64, _ word2: UInt64, _ word3: UInt64) {
    words = (word0, word1, word2, word3)
  }

  @inline(__always)
  func contains(_ byte: UInt8) -> Bool {
    let word: UInt64
    switch byte >> 6 {
    case 0: word = words.0
    case 1: word = words.1
    case 2: word = words.2
    default: word = words.3
    }
    return (word &>> UInt64(byte & 63)) & 1 != 0
  }
}
