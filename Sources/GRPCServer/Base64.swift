/// Base64 for `-bin` metadata: encodes without padding, as gRPC recommends, and decodes both the
/// padded and unpadded forms.
enum Base64 {
  private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

  private static let reverse: [UInt8] = {
    var table = [UInt8](repeating: 0xFF, count: 256)
    for (index, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(index) }
    return table
  }()

  static func encode(_ bytes: [UInt8]) -> String {
    String(decoding: encodeBytes(bytes, padded: false), as: UTF8.self)
  }

  /// The base64 digits of `bytes`, with `=` padding when `padded` (gRPC-Web text wants it).
  static func encodeBytes(_ bytes: some Collection<UInt8>, padded: Bool) -> [UInt8] {
    let bytes = Array(bytes)
    var out: [UInt8] = []
    out.reserveCapacity((bytes.count + 2) / 3 * 4)
    var index = 0
    while index + 3 <= bytes.count {
      let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
      out.append(alphabet[Int(chunk >> 18 & 0x3F)])
      out.append(alphabet[Int(chunk >> 12 & 0x3F)])
      out.append(alphabet[Int(chunk >> 6 & 0x3F)])
      out.append(alphabet[Int(chunk & 0x3F)])
      index += 3
    }
    let remaining = bytes.count - index
    if remaining > 0 {
      let first = UInt32(bytes[index]) << 16
      let second = remaining == 2 ? UInt32(bytes[index + 1]) << 8 : 0
      let chunk = first | second
      out.append(alphabet[Int(chunk >> 18 & 0x3F)])
      out.append(alphabet[Int(chunk >> 12 & 0x3F)])
      if remaining == 2 { out.append(alphabet[Int(chunk >> 6 & 0x3F)]) }
      if padded { out.append(contentsOf: repeatElement(UInt8(ascii: "="), count: 3 - remaining)) }
    }
    return out
  }

  /// The value of one base64 digit, 0xFF for anything else.
  static func digitValue(_ byte: UInt8) -> UInt8 { reverse[Int(byte)] }

  /// Nil when the text holds anything but base64 digits and trailing padding.
  static func decode(_ text: some StringProtocol) -> [UInt8]? {
    var digits = Array(text.utf8)
    while digits.last == UInt8(ascii: "=") { digits.removeLast() }
    guard digits.count % 4 != 1 else { return nil }
    var out: [UInt8] = []
    out.reserveCapacity(digits.count * 3 / 4)
    var accumulator: UInt32 = 0
    var bits = 0
    for digit in digits {
      let value = reverse[Int(digit)]
      guard value != 0xFF else { return nil }
      accumulator = accumulator << 6 | UInt32(value)
      bits += 6
      if bits >= 8 {
        bits -= 8
        out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
      }
    }
    return out
  }
}
