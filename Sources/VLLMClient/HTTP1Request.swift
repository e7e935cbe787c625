import NIOCore
import NIOHTTP1

/// One HTTP/1.1 request to vLLM as bytes: head and body in one buffer, so they leave in one
/// write and the connection's pipeline needs no encoder.
enum HTTP1Request {
  /// The request with a Host and Content-Length, `headers`, then `extraHeaders`; a header whose
  /// name or value could split the request is left out.
  static func encode(
    method: HTTPMethod, target: String, authority: String, headers: KeyValuePairs<String, String?> = [:],
    extraHeaders: [(String, String)] = [], body: [UInt8]?
  ) -> ByteBuffer {
    var buffer = ByteBufferAllocator().buffer(capacity: 384 + (body?.count ?? 0))
    buffer.writeString(method.rawValue)
    buffer.writeStaticString(" ")
    buffer.writeString(target)
    buffer.writeStaticString(" HTTP/1.1\r\nhost: ")
    buffer.writeString(authority)
    buffer.writeStaticString("\r\ncontent-length: ")
    buffer.writeString(String(body?.count ?? 0))
    buffer.writeStaticString("\r\n")
    for case (let name, let value?) in headers { write(name, value, to: &buffer) }
    for (name, value) in extraHeaders { write(name, value, to: &buffer) }
    buffer.writeStaticString("\r\n")
    if let body { buffer.writeBytes(body) }
    return buffer
  }

  private static func write(_ name: String, _ value: String, to buffer: inout ByteBuffer) {
    guard isToken(name) && isFieldValue(value) else { return }
    buffer.writeString(name)
    buffer.writeStaticString(": ")
    buffer.writeString(value)
    buffer.writeStaticString("\r\n")
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
