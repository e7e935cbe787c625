/// The percent-encoding gRPC uses for `grpc-message`: bytes outside printable ASCII, and `%`
/// itself, become `%XX` over the message's UTF-8.
enum PercentEncoding {
  /// The longest `grpc-message` sent, encoded. An upstream's error can quote what the client
  /// sent (vLLM's "The model `…` does not exist" holds the model name twice): a message of 32 KB
  /// made a header block past nghttp2's 64 KiB, which it does not send, and the call hung until
  /// its deadline; past grpcio's 8 KiB of metadata a client fails the call anyway.
  static let mostMessageBytes = 4096

  /// `message` encoded, cut (`TruncatedText`) so that it and the mark fit `mostMessageBytes`.
  /// The mark is plain ASCII, which encoding leaves as it is.
  static func encodeForHeader(_ message: String) -> String {
    encode(TruncatedText.fitting(message, in: mostMessageBytes) { isUnreserved($0) ? 1 : 3 })
  }

  static func encode(_ message: String) -> String {
    var needsEncoding = false
    for byte in message.utf8 where !isUnreserved(byte) {
      needsEncoding = true
      break
    }
    guard needsEncoding else { return message }
    let hex = Array("0123456789ABCDEF".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(message.utf8.count * 3)
    for byte in message.utf8 {
      if isUnreserved(byte) {
        out.append(byte)
      } else {
        out.append(UInt8(ascii: "%"))
        out.append(hex[Int(byte >> 4)])
        out.append(hex[Int(byte & 0x0F)])
      }
    }
    return String(decoding: out, as: UTF8.self)
  }

  /// Decodes `%XX` sequences; malformed ones are kept as they are, as the spec asks.
  static func decode(_ encoded: String) -> String {
    let bytes = Array(encoded.utf8)
    guard bytes.contains(UInt8(ascii: "%")) else { return encoded }
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    var index = 0
    while index < bytes.count {
      if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count,
        let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2])
      {
        out.append(high << 4 | low)
        index += 3
      } else {
        out.append(bytes[index])
        index += 1
      }
    }
    return String(decoding: out, as: UTF8.self)
  }

  private static func isUnreserved(_ byte: UInt8) -> Bool {
    byte >= 0x20 && byte <= 0x7E && byte != UInt8(ascii: "%")
  }

  private static func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
  }
}
