import NIOCore
import NIOHTTP1

/// One HTTP/1.1 request to vLLM as bytes: head and body in one buffer, so they leave in one
/// write and the connection's pipeline needs no encoder.
enum HTTP1Request {
  static func encode(
    method: HTTPMethod, target: String, authority: String, headers: [(String, String)], body: [UInt8]?
  ) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.reserveCapacity(256 + (body?.count ?? 0))
    buffer.writeString(method.rawValue)
    buffer.writeStaticString(" ")
    buffer.writeString(target)
    buffer.writeStaticString(" HTTP/1.1\r\nhost: ")
    buffer.writeString(authority)
    buffer.writeStaticString("\r\ncontent-length: ")
    buffer.writeString(String(body?.count ?? 0))
    buffer.writeStaticString("\r\n")
    for (name, value) in headers where isToken(name) && isFieldValue(value) {
      buffer.writeString(name)
      buffer.writeStaticString(": ")
      buffer.writeString(value)
      buffer.writeStaticString("\r\n")
    }
    buffer.writeStaticString("\r\n")
    if let body { buffer.writeBytes(body) }
    return buffer
  }

  /// A header name: RFC 9110's token characters. Anything else is dropped rather than allowed to
  /// split or smuggle a request.
  static func isToken(_ name: String) -> Bool {
    !name.isEmpty
      && name.utf8.allSatisfy { byte in
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
          UInt8(ascii: "0")...UInt8(ascii: "9"):
          true
        default:
          "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
      }
  }

  /// A header value without control characters (so no CR, LF or NUL).
  static func isFieldValue(_ value: String) -> Bool {
    value.utf8.allSatisfy { $0 == UInt8(ascii: "\t") || ($0 >= 0x20 && $0 != 0x7F) }
  }
}
