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
    appendEscaped(key.utf8)
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

  /// A key from UTF-8 bytes; invalid UTF-8 is repaired to U+FFFD, as for `string(utf8:)`.
  public mutating func key<Bytes: Collection<UInt8>>(bytes key: Bytes) {
    separate()
    appendEscapedRepairing(key)
    bytes.append(UInt8(ascii: ":"))
    needsComma = false
  }

  public mutating func string(_ value: String) {
    separate()
    appendEscaped(value.utf8)
    needsComma = true
  }

  /// A string from UTF-8 bytes; invalid UTF-8 is repaired to U+FFFD so the output stays valid.
  public mutating func string<Bytes: Collection<UInt8>>(utf8 value: Bytes) {
    separate()
    appendEscapedRepairing(value)
    needsComma = true
  }

  public mutating func int(_ value: Int64) {
    separate()
    bytes.append(contentsOf: String(value).utf8)
    needsComma = true
  }

  public mutating func uint(_ value: UInt64) {
    separate()
    bytes.append(contentsOf: String(value).utf8)
    needsComma = true
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

  /// Already-valid JSON text, copied as it is.
  public mutating func raw<Bytes: Collection<UInt8>>(_ json: Bytes) {
    separate()
    bytes.append(contentsOf: json)
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
    for byte in value {
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
