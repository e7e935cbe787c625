/// Which bytes HTTP/2 lets a header field's name, value and request pseudo-headers hold (RFC
/// 9113 section 8.2.1, RFC 9110's token, and RFC 3986 for an authority), as nghttp2's HTTP
/// messaging checked them: the sets are the same as its tables, so a request it reset is reset
/// here too.
enum HTTPFieldSyntax {
  /// A name: lower-case token characters only (an upper-case letter makes a request malformed).
  static func isValidName(_ name: UnsafeRawBufferPointer) -> Bool {
    !name.isEmpty && name.allSatisfy { lowerCaseToken.contains($0) }
  }

  /// A value: no control character but horizontal tab, no DEL, and no space or tab at either end.
  static func isValidValue(_ value: UnsafeRawBufferPointer) -> Bool {
    guard let first = value.first, let last = value.last else { return true }
    guard first != space, first != tab, last != space, last != tab else { return false }
    return hasOnlyVisibleBytes(value, lowest: space) || value.allSatisfy { fieldValue.contains($0) }
  }

  /// `:method`: a token (letters of either case).
  static func isValidMethod(_ value: UnsafeRawBufferPointer) -> Bool {
    !value.isEmpty && value.allSatisfy { token.contains($0) }
  }

  /// `:path`: visible bytes, no space (whether it is a path at all is checked at the end).
  static func isValidPath(_ value: UnsafeRawBufferPointer) -> Bool {
    hasOnlyVisibleBytes(value, lowest: space &+ 1)
  }

  /// `:authority` and `host`: what a URI's authority may hold.
  static func isValidAuthority(_ value: UnsafeRawBufferPointer) -> Bool {
    value.allSatisfy { authority.contains($0) }
  }

  /// `:scheme`: a letter, then letters, digits, `+`, `-` or `.`.
  static func isValidScheme(_ value: UnsafeRawBufferPointer) -> Bool {
    guard let first = value.first, letters.contains(first) else { return false }
    return value.dropFirst().allSatisfy { scheme.contains($0) }
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

  private static let letters = ByteSet("a"..."z", "A"..."Z")
  private static let digits = ByteSet("0"..."9")
  private static let tokenSymbols = ByteSet(characters: "!#$%&'*+-.^_`|~")
  private static let lowerCaseToken = ByteSet("a"..."z").union(digits).union(tokenSymbols)
  private static let token = lowerCaseToken.union(ByteSet("A"..."Z"))
  private static let fieldValue = ByteSet(characters: "\t").union(ByteSet(" "..."~")).union(.high)
  private static let authority = letters.union(digits).union(ByteSet(characters: "-._~!$&'()*+,;=:%@[]"))
  private static let scheme = letters.union(digits).union(ByteSet(characters: "+-."))
}

/// A set of bytes as four 64-bit masks: a membership test is a shift and a mask.
struct ByteSet: Sendable {
  private var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

  init(_ ranges: ClosedRange<Unicode.Scalar>...) {
    for range in ranges {
      for value in range.lowerBound.value...range.upperBound.value { insert(UInt8(value)) }
    }
  }

  init(characters: String) {
    for byte in characters.utf8 { insert(byte) }
  }

  /// Every byte from 0x80.
  static let high: ByteSet = {
    var set = ByteSet()
    set.words.2 = ~0
    set.words.3 = ~0
    return set
  }()

  func contains(_ byte: UInt8) -> Bool {
    let bit = UInt64(1) &<< UInt64(byte & 63)
    switch byte >> 6 {
    case 0: return words.0 & bit != 0
    case 1: return words.1 & bit != 0
    case 2: return words.2 & bit != 0
    default: return words.3 & bit != 0
    }
  }

  func union(_ other: ByteSet) -> ByteSet {
    var set = self
    set.words = (words.0 | other.words.0, words.1 | other.words.1, words.2 | other.words.2, words.3 | other.words.3)
    return set
  }

  private mutating func insert(_ byte: UInt8) {
    let bit = UInt64(1) &<< UInt64(byte & 63)
    switch byte >> 6 {
    case 0: words.0 |= bit
    case 1: words.1 |= bit
    case 2: words.2 |= bit
    default: words.3 |= bit
    }
  }
}
