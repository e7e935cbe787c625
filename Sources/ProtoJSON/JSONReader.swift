/// A pull parser over JSON text: the caller walks objects and arrays and reads each value as the
/// type it expects, without building a tree. Strings come back as unescaped UTF-8 bytes, ready to
/// copy into protobuf.
public struct JSONReader {
  public enum Kind: Equatable, Sendable {
    case object, array, string, number, bool, null

    /// One bit per kind, for sets of kinds.
    public var bit: UInt8 {
      switch self {
      case .object: 1
      case .array: 2
      case .string: 4
      case .number: 8
      case .bool: 16
      case .null: 32
      }
    }
  }

  public struct Failure: Error, Equatable, CustomStringConvertible {
    public let reason: String
    public let offset: Int
    public var description: String { "invalid JSON at byte \(offset): \(reason)" }
  }

  /// Deeper nesting than this is refused rather than risking the stack.
  public static let maximumDepth = 128

  public let bytes: [UInt8]
  public private(set) var index = 0
  private var depth = 0

  public init(_ bytes: [UInt8]) {
    self.bytes = bytes
  }

  /// Continues reading at `offset` (a position this reader reported earlier).
  public mutating func rewind(to offset: Int) {
    index = offset
  }

  /// Continues reading the top-level object at `offset`, after one of its members (where a
  /// `RepeatedHead` ended): the next read is its next member or its end.
  mutating func resumeTopLevelObject(at offset: Int) {
    index = offset
    depth = 1
    firstMember = false
  }

  public var isAtEnd: Bool {
    mutating get {
      skipWhitespace()
      return index >= bytes.count
    }
  }

  @inline(__always)
  public mutating func peekKind() throws(Failure) -> Kind {
    skipWhitespace()
    guard index < bytes.count else { throw failure("unexpected end of input") }
    switch bytes[index] {
    case UInt8(ascii: "{"): return .object
    case UInt8(ascii: "["): return .array
    case UInt8(ascii: "\""): return .string
    case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
    case UInt8(ascii: "n"): return .null
    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
    default: throw failure("unexpected character '\(Character(Unicode.Scalar(bytes[index])))'")
    }
  }

  // MARK: Objects and arrays

  @inline(__always)
  public mutating func beginObject() throws(Failure) {
    try expect(UInt8(ascii: "{"))
    try enter()
    firstMember = true
  }

  private var firstMember = false

  /// The next key of the current object, or nil at its end (which is consumed).
  public mutating func nextKey() throws(Failure) -> [UInt8]? {
    try nextKeySlice().map { Array($0) }
  }

  /// The same without copying a key that has no escapes: a slice of `bytes`.
  public mutating func nextKeySlice() throws(Failure) -> ArraySlice<UInt8>? {
    guard let key = try nextKeyRange() else { return nil }
    switch key {
    case .plain(let range): return bytes[range]
    case .unescaped(let copy): return ArraySlice(copy)
    }
  }

  /// A key: its range in `bytes` when it has no escapes, else its unescaped copy.
  public enum Key {
    case plain(Range<Int>)
    case unescaped([UInt8])

    /// Whether the key is "type" (which tags a variant object).
    func isType(in bytes: [UInt8]) -> Bool {
      switch self {
      case .plain(let range): range.count == 4 && bytes[range].elementsEqual("type".utf8)
      case .unescaped(let copy): copy.elementsEqual("type".utf8)
      }
    }
  }

  /// The key `nextMember` found, as `nextKeySlice` gives it.
  mutating func nextKeyBytes() throws(Failure) -> ArraySlice<UInt8> {
    switch try readKey() {
    case .plain(let range): bytes[range]
    case .unescaped(let copy): copy[...]
    }
  }

  public mutating func nextKeyRange() throws(Failure) -> Key? {
    guard try nextMember() else { return nil }
    return try readKey()
  }

  /// True when another member of the current object follows, positioned at its key; false at the
  /// object's end (which is consumed). Read the key with `readKey` or `consumeKey`.
  @inline(__always)
  public mutating func nextMember() throws(Failure) -> Bool {
    skipWhitespace()
    guard index < bytes.count else { throw failure("unterminated object") }
    if bytes[index] == UInt8(ascii: "}") {
      index += 1
      depth -= 1
      // The object was itself a member of its parent, which is no longer at its first.
      firstMember = false
      return false
    }
    if !firstMember {
      // Whitespace is behind and a byte is there: `expect` would check both again.
      guard bytes[index] == UInt8(ascii: ",") else { throw failure("expected ','") }
      index += 1
      skipWhitespace()
    }
    firstMember = false
    return true
  }

  /// The key of the member `nextMember` found, and its colon.
  public mutating func readKey() throws(Failure) -> Key {
    let key: Key
    if let range = try readPlainStringRange() {
      key = .plain(range)
    } else {
      key = .unescaped(try readStringBytes())
    }
    try expect(UInt8(ascii: ":"))
    return key
  }

  /// Consumes the key of the member `nextMember` found and its colon, when they are exactly
  /// `key` (a key as a schema spells it, in quotes, then ':'; its bytes in `patternBytes`);
  /// false, with nothing consumed, for anything else, which `readKey` then reads. A word or two
  /// compared, no hashing: what a key costs when the caller guesses it right.
  @inline(__always)
  mutating func consumeKey(_ key: KeyPattern, in patternBytes: [UInt8]) -> Bool {
    // Wrapping arithmetic: offsets stay within the arrays, whose bounds the spans check.
    guard index &+ 16 <= bytes.count else { return consumeLongKey(key, in: patternBytes) }
    // A long key's first word rules most keys out before its bytes are compared out of line.
    guard Self.startsWith(key, bytes, at: index) else { return false }
    guard key.length <= 16 else { return consumeLongKey(key, in: patternBytes) }
    index &+= key.length
    return true
  }

  /// Whether `bytes` holds `key` at `index` as far as its first and (up to 16 bytes) last words
  /// tell, with 16 bytes there to read.
  @inline(__always)
  private static func startsWith(_ key: KeyPattern, _ bytes: [UInt8], at index: Int) -> Bool {
    let input = bytes.span.bytes
    return UInt64(littleEndian: input.word(at: index)) & key.headMask == key.head
      && (key.length <= 8 || key.length > 16
        || UInt64(littleEndian: input.word(at: index &+ key.length &- 8)) == key.tail)
  }

  /// The same for keys longer than 16 bytes, and near the end of the input: their bytes compared.
  private mutating func consumeLongKey(_ key: KeyPattern, in patternBytes: [UInt8]) -> Bool {
    let end = index &+ key.length
    guard end <= bytes.count else { return false }
    guard
      bytes.span.extracting(index..<end).hasSameBytes(
        as: patternBytes.span.extracting(key.start..<(key.start &+ key.length)))
    else { return false }
    index = end
    return true
  }

  public mutating func beginArray() throws(Failure) {
    try expect(UInt8(ascii: "["))
    try enter()
    firstMember = true
  }

  /// True when another element follows (positioned at it); false at the array's end (consumed).
  @inline(__always)
  public mutating func nextElement() throws(Failure) -> Bool {
    skipWhitespace()
    guard index < bytes.count else { throw failure("unterminated array") }
    if bytes[index] == UInt8(ascii: "]") {
      index += 1
      depth -= 1
      firstMember = false
      return false
    }
    if !firstMember { try expect(UInt8(ascii: ",")) }
    firstMember = false
    return true
  }

  // MARK: Scalars

  @inline(__always)
  public mutating func readNull() throws(Failure) {
    skipWhitespace()
    // The common case, checked byte by byte without the general literal loop.
    if index + 4 <= bytes.count && bytes[index] == UInt8(ascii: "n") && bytes[index + 1] == UInt8(ascii: "u")
      && bytes[index + 2] == UInt8(ascii: "l") && bytes[index + 3] == UInt8(ascii: "l")
    {
      index += 4
      return
    }
    try expectLiteral("null")
  }

  /// A number that is a plain integer of up to 18 digits, read without building text; nil (and
  /// nothing consumed) for anything else, which `readNumberText` then handles.
  @inline(__always)
  public mutating func readPlainInteger() -> Int64? {
    skipWhitespace()
    guard let (value, end) = Self.plainInteger(bytes.span, from: index) else { return nil }
    index = end
    return value
  }

  /// The plain integer starting at `start` and where it ends, read over a span (see `equal`).
  @inline(__always)
  static func plainInteger(_ text: Span<UInt8>, from start: Int) -> (Int64, Int)? {
    var scan = start
    let negative = scan < text.count && text[scan] == UInt8(ascii: "-")
    if negative { scan &+= 1 }
    let digitsStart = scan
    // At most 17 digits: no overflow to check for. An 18th makes it no plain integer.
    let limit = min(text.count, digitsStart &+ 18)
    var value: Int64 = 0
    while scan < limit {
      let digit = text[scan] &- UInt8(ascii: "0")
      guard digit < 10 else { break }
      value = value &* 10 &+ Int64(digit)
      scan &+= 1
    }
    let digits = scan &- digitsStart
    guard digits > 0, digits < 18, !(digits > 1 && text[digitsStart] == UInt8(ascii: "0")) else { return nil }
    if scan < text.count {
      switch text[scan] {
      case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"), UInt8(ascii: "0")...UInt8(ascii: "9"): return nil
      default: break
      }
    }
    return (negative ? -value : value, scan)
  }

  public mutating func readBool() throws(Failure) -> Bool {
    skipWhitespace()
    if index < bytes.count && bytes[index] == UInt8(ascii: "t") {
      try expectLiteral("true")
      return true
    }
    try expectLiteral("false")
    return false
  }

  /// The number's text, validated against JSON's number grammar.
  public mutating func readNumberText() throws(Failure) -> ArraySlice<UInt8> {
    skipWhitespace()
    let start = index
    if index < bytes.count && bytes[index] == UInt8(ascii: "-") { index += 1 }
    guard index < bytes.count, isDigit(bytes[index]) else { throw failure("invalid number") }
    if bytes[index] == UInt8(ascii: "0") {
      index += 1
    } else {
      while index < bytes.count && isDigit(bytes[index]) { index += 1 }
    }
    if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
      index += 1
      guard index < bytes.count, isDigit(bytes[index]) else { throw failure("invalid number") }
      while index < bytes.count && isDigit(bytes[index]) { index += 1 }
    }
    if index < bytes.count && (bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E")) {
      index += 1
      if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) {
        index += 1
      }
      guard index < bytes.count, isDigit(bytes[index]) else { throw failure("invalid number") }
      while index < bytes.count && isDigit(bytes[index]) { index += 1 }
    }
    return bytes[start..<index]
  }

  public mutating func readDouble() throws(Failure) -> Double {
    let text = try readNumberText()
    guard let value = Double(String(decoding: text, as: UTF8.self)) else { throw failure("invalid number") }
    return value
  }

  /// An integer; a number with a fraction or exponent is accepted when its value is integral.
  public mutating func readInt64() throws(Failure) -> Int64 {
    let text = try readNumberText()
    if let value = Int64(String(decoding: text, as: UTF8.self)) { return value }
    guard let double = Double(String(decoding: text, as: UTF8.self)), double.rounded() == double,
      let value = Int64(exactly: double)
    else { throw failure("not an integer: \(String(decoding: text, as: UTF8.self))") }
    return value
  }

  public mutating func readString() throws(Failure) -> String {
    String(decoding: try readStringBytes(), as: UTF8.self)
  }

  /// A string's content when it has no escapes: its range in `bytes`, with nothing copied.
  /// Nil (and nothing consumed) when it has escapes; read it with `readStringBytes` then.
  @inline(__always)
  public mutating func readPlainStringRange() throws(Failure) -> Range<Int>? {
    skipWhitespace()
    guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw failure("expected '\"'") }
    // Wrapping arithmetic: positions stay within `bytes.count`, far from overflowing.
    guard let end = Self.plainStringEnd(of: bytes, from: index &+ 1) else { return nil }
    guard end < bytes.count else { throw failure("unterminated string") }
    let range = (index &+ 1)..<end
    index = end &+ 1
    return range
  }

  /// Where the string whose text starts at `start` ends (at its closing quote) when the text
  /// holds no escape or control byte; nil when it does, and `bytes.count` when nothing ends it.
  @inline(__always)
  public static func plainStringEnd(of bytes: [UInt8], from start: Int) -> Int? {
    plainStringEnd(of: bytes.span, from: start)
  }

  /// The same over borrowed bytes (a streamed event read where it lies).
  @inline(__always)
  public static func plainStringEnd(of bytes: Span<UInt8>, from start: Int) -> Int? {
    var scan = plainPrefixEnd(of: bytes, from: start)
    while scan < bytes.count {
      let byte = bytes[scan]
      // Above the backslash (lower-case letters, most of what ids and keys hold) nothing ends
      // the string or needs unescaping: one comparison for those.
      if byte > UInt8(ascii: "\\") {
        scan &+= 1
        continue
      }
      if byte == UInt8(ascii: "\"") { return scan }
      if byte == UInt8(ascii: "\\") || byte < 0x20 { return nil }
      scan &+= 1
    }
    return scan
  }

  /// Where the first quote, backslash or control byte from `start` lies, or close to the end:
  /// eight bytes a step while eight remain, without a branch per byte. Ids, model names and
  /// tokens are mostly plain; the caller reads the rest byte by byte.
  @inline(__always)
  static func plainPrefixEnd(of bytes: Span<UInt8>, from start: Int) -> Int {
    let span = bytes.bytes
    var scan = start
    while scan &+ 8 <= span.byteCount {
      let special = specialBytes(in: UInt64(littleEndian: span.word(at: scan)))
      if special != 0 { return scan &+ special.trailingZeroBitCount &>> 3 }
      scan &+= 8
    }
    return scan
  }

  /// The high bit of each byte of `word` that is a quote, a backslash or below 0x20, and maybe of
  /// some bytes above such a one (a borrow carries upward): the lowest bit set is always exact.
  /// Bytes from 0x80 up (UTF-8 beyond ASCII) never count.
  @inline(__always)
  static func specialBytes(in word: UInt64) -> UInt64 {
    let ones: UInt64 = 0x0101_0101_0101_0101
    let highBits: UInt64 = 0x8080_8080_8080_8080
    let quotes = word ^ (ones &* UInt64(UInt8(ascii: "\"")))
    let backslashes = word ^ (ones &* UInt64(UInt8(ascii: "\\")))
    let zeroQuote = (quotes &- ones) & ~quotes
    let zeroBackslash = (backslashes &- ones) & ~backslashes
    return (zeroQuote | zeroBackslash | belowSpace(word)) & highBits
  }

  /// The borrow test for bytes of `word` below 0x20: a byte below it borrows into its high bit,
  /// one from 0x80 up has that bit cleared by `~word`. Read only the high bits; the lowest set
  /// is always exact.
  @inline(__always)
  private static func belowSpace(_ word: UInt64) -> UInt64 {
    (word &- 0x2020_2020_2020_2020) & ~word
  }

  /// Whether `bytes` hold a control byte (below 0x20), such as a CR or LF: whitespace between
  /// JSON's tokens, or nothing valid. Eight bytes a step while eight remain.
  static func holdsControlByte(_ bytes: Span<UInt8>) -> Bool {
    let raw = bytes.bytes
    var scan = 0
    while scan &+ 8 <= raw.byteCount {
      if belowSpace(UInt64(littleEndian: raw.word(at: scan))) & 0x8080_8080_8080_8080 != 0 { return true }
      scan &+= 8
    }
    while scan < bytes.count {
      if bytes[scan] < 0x20 { return true }
      scan &+= 1
    }
    return false
  }

  /// A string's content, unescaped, as UTF-8.
  public mutating func readStringBytes() throws(Failure) -> [UInt8] {
    skipWhitespace()
    try expect(UInt8(ascii: "\""))
    let start = index
    // Fast path: no escapes.
    while index < bytes.count {
      let byte = bytes[index]
      if byte == UInt8(ascii: "\"") {
        index += 1
        return Array(bytes[start..<index - 1])
      }
      if byte == UInt8(ascii: "\\") || byte < 0x20 { break }
      index += 1
    }
    var out = Array(bytes[start..<index])
    while index < bytes.count {
      let byte = bytes[index]
      index += 1
      switch byte {
      case UInt8(ascii: "\""):
        return out
      case UInt8(ascii: "\\"):
        try readEscape(into: &out)
      case 0..<0x20:
        throw failure("control character in string")
      default:
        out.append(byte)
      }
    }
    throw failure("unterminated string")
  }

  /// Skips one value of any kind.
  public mutating func skipValue() throws(Failure) {
    switch try peekKind() {
    case .object:
      try beginObject()
      while try nextKeySlice() != nil { try skipValue() }
    case .array:
      try beginArray()
      while try nextElement() { try skipValue() }
    case .string:
      // Most strings have no escape: skipped in place, with no copy. The rest are read (and so
      // checked) as any string is.
      if try readPlainStringRange() == nil { _ = try readStringBytes() }
    case .number:
      _ = try readNumberText()
    case .bool:
      _ = try readBool()
    case .null:
      try readNull()
    }
  }

  /// The raw text of the next value, skipped over.
  public mutating func rawValue() throws(Failure) -> ArraySlice<UInt8> {
    skipWhitespace()
    let start = index
    try skipValue()
    return bytes[start..<index]
  }

  // MARK: Internals

  @inline(__always)
  private mutating func enter() throws(Failure) {
    depth += 1
    guard depth <= Self.maximumDepth else { throw failure("nested deeper than \(Self.maximumDepth)") }
  }

  private mutating func readEscape(into out: inout [UInt8]) throws(Failure) {
    guard index < bytes.count else { throw failure("unterminated escape") }
    let escape = bytes[index]
    index += 1
    switch escape {
    case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
    case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
    case UInt8(ascii: "/"): out.append(UInt8(ascii: "/"))
    case UInt8(ascii: "b"): out.append(0x08)
    case UInt8(ascii: "f"): out.append(0x0C)
    case UInt8(ascii: "n"): out.append(0x0A)
    case UInt8(ascii: "r"): out.append(0x0D)
    case UInt8(ascii: "t"): out.append(0x09)
    case UInt8(ascii: "u"):
      var scalar = try readHex4()
      if (0xD800..<0xDC00).contains(scalar) {
        // A high surrogate must be followed by an escaped low one; alone it becomes U+FFFD.
        if index + 1 < bytes.count && bytes[index] == UInt8(ascii: "\\") && bytes[index + 1] == UInt8(ascii: "u") {
          let save = index
          index += 2
          let low = try readHex4()
          if (0xDC00..<0xE000).contains(low) {
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
          } else {
            index = save
            scalar = 0xFFFD
          }
        } else {
          scalar = 0xFFFD
        }
      } else if (0xDC00..<0xE000).contains(scalar) {
        scalar = 0xFFFD
      }
      appendUTF8(scalar, to: &out)
    default:
      throw failure("invalid escape")
    }
  }

  private mutating func readHex4() throws(Failure) -> UInt32 {
    guard index + 4 <= bytes.count else { throw failure("truncated \\u escape") }
    var value: UInt32 = 0
    for _ in 0..<4 {
      let byte = bytes[index]
      index += 1
      let digit: UInt32
      switch byte {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
      case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
      case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
      default: throw failure("invalid \\u escape")
      }
      value = value << 4 | digit
    }
    return value
  }

  private func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
    let value = Unicode.Scalar(scalar) ?? "\u{FFFD}"
    out.append(contentsOf: String(Character(value)).utf8)
  }

  @inline(__always)
  private mutating func skipWhitespace() {
    while index < bytes.count {
      switch bytes[index] {
      case 0x20, 0x0A, 0x0D, 0x09: index += 1
      default: return
      }
    }
  }

  @inline(__always)
  private mutating func expect(_ byte: UInt8) throws(Failure) {
    skipWhitespace()
    guard index < bytes.count, bytes[index] == byte else {
      throw failure("expected '\(Character(Unicode.Scalar(byte)))'")
    }
    index += 1
  }

  private mutating func expectLiteral(_ literal: StaticString) throws(Failure) {
    skipWhitespace()
    let count = literal.utf8CodeUnitCount
    guard index + count <= bytes.count else { throw failure("unexpected end of input") }
    for offset in 0..<count where bytes[index + offset] != literal.utf8Start[offset] {
      throw failure("expected \(literal)")
    }
    index += count
  }

  @inline(__always)
  private func isDigit(_ byte: UInt8) -> Bool {
    byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
  }

  private func failure(_ reason: String) -> Failure {
    Failure(reason: reason, offset: index)
  }
}
