/// Appends JSON text to a byte array. The caller writes keys and values in order; commas are
/// placed automatically.
public struct JSONWriter {
  public private(set) var bytes: [UInt8] = []
  /// Whether the next member of the innermost container needs a comma before it.
  private var needsComma = false
  /// How many objects and arrays are open, for writers that bound their nesting.
  public private(set) var depth = 0

  public init(capacity: Int = 256) {
    bytes.reserveCapacity(capacity)
  }

  /// Writes on at the end of `buffer` (commas placed as in a new writer): for a log that gathers
  /// its lines in one buffer, with no array of its own for each line to be copied from.
  public static func appending(to buffer: inout [UInt8], _ write: (inout JSONWriter) -> Void) {
    var writer = JSONWriter(capacity: 0)
    swap(&writer.bytes, &buffer)
    write(&writer)
    swap(&writer.bytes, &buffer)
  }

  /// Where the writer stands, to come back to: what it wrote after is dropped.
  struct Checkpoint {
    fileprivate let count: Int
    fileprivate let needsComma: Bool
    fileprivate let depth: Int
  }

  var checkpoint: Checkpoint { Checkpoint(count: bytes.count, needsComma: needsComma, depth: depth) }

  mutating func rollBack(to checkpoint: Checkpoint) {
    bytes.removeSubrange(checkpoint.count...)
    needsComma = checkpoint.needsComma
    depth = checkpoint.depth
  }

  public mutating func beginObject() {
    separate()
    bytes.append(UInt8(ascii: "{"))
    depth += 1
    needsComma = false
  }

  public mutating func endObject() {
    bytes.append(UInt8(ascii: "}"))
    depth -= 1
    needsComma = true
  }

  public mutating func beginArray() {
    separate()
    bytes.append(UInt8(ascii: "["))
    depth += 1
    needsComma = false
  }

  public mutating func endArray() {
    bytes.append(UInt8(ascii: "]"))
    depth -= 1
    needsComma = true
  }

  /// Writes `"key":`; the value follows.
  public mutating func key(_ key: String) {
    separate()
    var key = key
    key.withUTF8 { appendEscaped($0) }
    bytes.append(UInt8(ascii: ":"))
    needsComma = false
  }

  /// Writes `"key":` for a key known to need no escaping (plain ASCII letters, digits and `_`).
  public mutating func key(plain key: StaticString) {
    separate()
    bytes.append(UInt8(ascii: "\""))
    key.withUTF8Buffer { bytes.append(contentsOf: $0) }
    bytes.append(UInt8(ascii: "\""))
    bytes.append(UInt8(ascii: ":"))
    needsComma = false
  }

  /// A key already written out with its quotes and colon (`"name":`), as a `Key` made once:
  /// one copy instead of five appends, for writers that repeat the same keys on every call.
  public mutating func key(_ key: Key) {
    separate()
    bytes.append(contentsOf: key.quoted)
    needsComma = false
  }

  /// A key's bytes with its quotes and colon, made once for a key that needs no escaping.
  public struct Key: Sendable {
    let quoted: [UInt8]

    public init(plain name: String) {
      quoted = Array("\"\(name)\":".utf8)
    }

    /// Any key, escaped as `key(_:)` would write it.
    public init(escaping name: String) {
      var writer = JSONWriter(capacity: name.utf8.count + 3)
      writer.key(name)
      quoted = writer.bytes
    }
  }

  /// A key from UTF-8 bytes; invalid UTF-8 is repaired to U+FFFD, as for `string(utf8:)`.
  public mutating func key<Bytes: Collection<UInt8>>(bytes key: Bytes) {
    separate()
    appendEscapedRepairing(key)
    bytes.append(UInt8(ascii: ":"))
    needsComma = false
  }

  /// `"key":"value"` in one call: what a log line is made of.
  public mutating func member(_ key: Key, _ value: String) {
    self.key(key)
    string(value)
  }

  public mutating func string(_ value: String) {
    separate()
    // Scanning a String's UTF-8 view by index cost about 30 instructions a byte; its contiguous
    // bytes are read in place instead.
    var value = value
    value.withUTF8 { appendEscaped($0) }
    needsComma = true
  }

  /// The string in `source[range]`, UTF-8. Plain ASCII (no quote, backslash or control byte),
  /// what most strings are, is found eight bytes a step and copied in one go; anything else
  /// goes as `string(utf8:)` does. A check and an escape scan byte by byte, each generic over
  /// the slice, cost about 20 instructions a byte (callgrind, a unary chat request).
  public mutating func string(utf8 source: [UInt8], _ range: Range<Int>) {
    guard Self.isPlainASCII(source, range) else {
      string(utf8: source[range])
      return
    }
    separate()
    bytes.append(UInt8(ascii: "\""))
    bytes.append(contentsOf: source[range])
    bytes.append(UInt8(ascii: "\""))
    needsComma = true
  }

  /// Whether `source[range]` is ASCII that JSON takes as it is.
  static func isPlainASCII(_ source: [UInt8], _ range: Range<Int>) -> Bool {
    let words = source.span.bytes
    var scan = range.lowerBound
    while scan &+ 8 <= range.upperBound {
      if notPlainBytes(in: UInt64(littleEndian: words.word(at: scan))) != 0 { return false }
      scan &+= 8
    }
    let left = range.upperBound &- scan
    if left == 0 { return true }
    // The last bytes, up to seven, as one more word rather than byte by byte (about 10
    // instructions a byte): the range's last eight bytes, or a short string's with the bytes
    // after it, whose flags are masked off. (A flag never spills into a byte before the one that
    // raised it, so a masked word answers for the bytes kept.)
    if range.count >= 8 {
      return notPlainBytes(in: UInt64(littleEndian: words.word(at: range.upperBound &- 8))) == 0
    }
    if scan &+ 8 <= words.byteCount {
      let kept: UInt64 = (1 &<< (UInt64(left) &* 8)) &- 1
      return notPlainBytes(in: UInt64(littleEndian: words.word(at: scan))) & kept == 0
    }
    while scan < range.upperBound {
      if !isPlain(source[scan]) { return false }
      scan &+= 1
    }
    return true
  }

  /// The high bit of each byte of `word` (read little-endian) that a JSON string does not take as
  /// it is (a quote, a backslash, a control byte) or that is beyond ASCII, and maybe of bytes
  /// above such a one: the lowest bit set is exact (see `JSONReader.specialBytes`).
  @inline(__always)
  static func notPlainBytes(in word: UInt64) -> UInt64 {
    JSONReader.specialBytes(in: word) | (word & 0x8080_8080_8080_8080)
  }

  /// The same for one byte.
  @inline(__always)
  static func isPlain(_ byte: UInt8) -> Bool {
    byte < 0x80 && byte >= 0x20 && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\")
  }

  /// A string from UTF-8 bytes; invalid UTF-8 is repaired to U+FFFD so the output stays valid.
  public mutating func string<Bytes: Collection<UInt8>>(utf8 value: Bytes) {
    separate()
    appendEscapedRepairing(value)
    needsComma = true
  }

  /// An integer by its sign and magnitude (a protobuf integer of any type, see
  /// `ProtoToJSON.integer`).
  mutating func integer(negative: Bool, magnitude: UInt64) {
    separate()
    if negative { bytes.append(UInt8(ascii: "-")) }
    appendDigits(magnitude)
    needsComma = true
  }

  public mutating func int(_ value: Int64) {
    separate()
    if value < 0 { bytes.append(UInt8(ascii: "-")) }
    appendDigits(value.magnitude)
    needsComma = true
  }

  public mutating func uint(_ value: UInt64) {
    separate()
    appendDigits(value)
    needsComma = true
  }

  /// The decimal digits of `value`, written straight into the output (no String in between).
  private mutating func appendDigits(_ value: UInt64) {
    var divisor: UInt64 = 1
    while value / divisor >= 10 { divisor *= 10 }
    var rest = value
    while divisor > 0 {
      bytes.append(UInt8(ascii: "0") + UInt8(rest / divisor))
      rest %= divisor
      divisor /= 10
    }
  }

  /// JSON has no NaN or infinity; they are written as null.
  public mutating func double(_ value: Double) {
    separate()
    if value.isFinite {
      if value == value.rounded() && abs(value) < 1e15 {
        bytes.append(contentsOf: String(Int64(value)).utf8)
      } else {
        bytes.append(contentsOf: "\(value)".utf8)
      }
    } else {
      bytes.append(contentsOf: "null".utf8)
    }
    needsComma = true
  }

  public mutating func bool(_ value: Bool) {
    separate()
    bytes.append(contentsOf: (value ? "true" : "false").utf8)
    needsComma = true
  }

  public mutating func null() {
    separate()
    bytes.append(contentsOf: "null".utf8)
    needsComma = true
  }

  /// Already-valid JSON text, copied as it is. (An array is copied in one go; the generic
  /// version below, called from another module, went byte by byte.)
  public mutating func raw(_ json: [UInt8]) {
    separate()
    bytes.append(contentsOf: json)
    needsComma = true
  }

  /// Already-valid JSON text, copied as it is.
  public mutating func raw<Bytes: Collection<UInt8>>(_ json: Bytes) {
    separate()
    bytes.append(contentsOf: json)
    needsComma = true
  }

  /// `room` bytes reserved at the end and handed to `body` to store into, from its offset 0;
  /// `body` answers how many it wrote, and the rest is cut off. For a `RequestTemplate`, which
  /// stores its runs (keys, commas, brackets) and plain values a word at a time: appended one
  /// by one, each cost a uniqueness and room check and a slice (callgrind). The next value
  /// follows with no comma (a run ends where a value starts).
  mutating func write(room: Int, _ body: (inout MutableRawSpan) -> Int) {
    bytes.append(addingCapacity: room) { output in
      output.append(repeating: 0, count: room)
      var content = output.mutableSpan
      // `mutableBytes` is marked unsafe for element types with invalid bit patterns; UInt8 has
      // none. The stores are bounds-checked.
      var target = content.mutableBytes
      let written = body(&target)
      output.removeLast(room &- written)
    }
    needsComma = false
  }

  /// After a `RequestTemplate` wrote an object's members: more members follow with a comma.
  mutating func membersWritten() {
    needsComma = true
  }

  private mutating func separate() {
    if needsComma { bytes.append(UInt8(ascii: ",")) }
  }

  private mutating func appendEscapedRepairing<Bytes: Collection<UInt8>>(_ value: Bytes) {
    if value.allSatisfy({ $0 < 0x80 }) {
      // ASCII needs no repair: escaped straight from the bytes, without a String in between.
      appendEscaped(value)
    } else {
      appendEscaped(String(decoding: value, as: UTF8.self).utf8)
    }
  }

  private mutating func appendEscaped<Bytes: Collection<UInt8>>(_ value: Bytes) {
    bytes.append(UInt8(ascii: "\""))
    // Most strings need no escaping at all: copy the plain run before the first byte that does
    // in one go rather than byte by byte.
    var scan = value.startIndex
    while scan != value.endIndex {
      let byte = value[scan]
      // Above the backslash (lower-case letters, most of what names hold) nothing needs
      // escaping: one comparison for those.
      if byte > UInt8(ascii: "\\") || (byte >= 0x20 && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\")) {
        value.formIndex(after: &scan)
        continue
      }
      break
    }
    guard scan != value.endIndex else {
      bytes.append(contentsOf: value)
      bytes.append(UInt8(ascii: "\""))
      return
    }
    bytes.append(contentsOf: value[..<scan])
    for byte in value[scan...] {
      switch byte {
      case UInt8(ascii: "\""):
        bytes.append(UInt8(ascii: "\\"))
        bytes.append(UInt8(ascii: "\""))
      case UInt8(ascii: "\\"):
        bytes.append(UInt8(ascii: "\\"))
        bytes.append(UInt8(ascii: "\\"))
      case 0x0A:
        bytes.append(UInt8(ascii: "\\"))
        bytes.append(UInt8(ascii: "n"))
      case 0x0D:
        bytes.append(UInt8(ascii: "\\"))
        bytes.append(UInt8(ascii: "r"))
      case 0x09:
        bytes.append(UInt8(ascii: "\\"))
        bytes.append(UInt8(ascii: "t"))
      case 0..<0x20:
        let hex = Array("0123456789abcdef".utf8)
        bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
        bytes.append(hex[Int(byte >> 4)])
        bytes.append(hex[Int(byte & 0xF)])
      default:
        bytes.append(byte)
      }
    }
    bytes.append(UInt8(ascii: "\""))
  }
}
