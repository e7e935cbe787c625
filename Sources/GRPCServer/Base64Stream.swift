/// Decodes a gRPC-Web text body as it arrives: base64 in groups of four digits, where a client
/// may pad and restart after any group (one padded piece per message), and DATA frames may
/// split a group anywhere.
struct Base64Stream {
  enum Failure: Error {
    case invalidDigit(UInt8)
  }

  private var group: UInt32 = 0
  private var digits = 0
  private var padding = 0

  /// Whether a group has begun and not been completed: a body ending here was cut short.
  var hasPartialGroup: Bool { digits + padding > 0 }

  mutating func decode(_ bytes: UnsafeRawBufferPointer, into out: inout [UInt8]) throws(Failure) {
    out.reserveCapacity(out.count + bytes.count * 3 / 4)
    for byte in bytes {
      if byte == UInt8(ascii: "=") {
        guard digits >= 2 else { throw .invalidDigit(byte) }
        padding += 1
      } else {
        let value = Base64.digitValue(byte)
        guard value != 0xFF, padding == 0 else { throw .invalidDigit(byte) }
        group = group << 6 | UInt32(value)
        digits += 1
      }
      guard digits + padding == 4 else { continue }
      let bits = group << (6 * UInt32(padding))
      out.append(UInt8(truncatingIfNeeded: bits >> 16))
      if digits >= 3 { out.append(UInt8(truncatingIfNeeded: bits >> 8)) }
      if digits == 4 { out.append(UInt8(truncatingIfNeeded: bits)) }
      group = 0
      digits = 0
      padding = 0
    }
  }
}
