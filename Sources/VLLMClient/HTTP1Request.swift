import NIOCore
import NIOHTTP1

/// One HTTP/1.1 request to vLLM as bytes: head and body in one buffer, so they leave in one
/// write and the connection's pipeline needs no encoder.
enum HTTP1Request {
  /// The request for `path` (after the template's base path) with a Host and Content-Length, the
  /// client's own headers (the content type when there is a body, accept, authorization), then
  /// `extraHeaders`, of which one whose name or value could split the request is left out.
  static func encode(
    method: HTTPMethod, path: String, template: HTTP1HeadTemplate, contentType: String = "application/json",
    extraHeaders: [(String, String)] = [], body: [UInt8]?
  ) -> ByteBuffer {
    // The head is gathered in an array and enters the buffer in one write: each of the dozen
    // pieces written to a ByteBuffer cost about 250 instructions (callgrind), the array append a
    // few dozen. What is the same for every request to the upstream comes from the template.
    var head: [UInt8] = []
    head.reserveCapacity(512)
    if method == .POST {
      head.append(contentsOf: "POST ".utf8)
    } else {
      head.append(contentsOf: method.rawValue.utf8)
      head.append(UInt8(ascii: " "))
    }
    head.append(contentsOf: template.basePath)
    head.append(contentsOf: path.utf8)
    head.append(contentsOf: template.afterTarget)
    appendDecimal(body?.count ?? 0, to: &head)
    if body == nil {
      head.append(contentsOf: template.bodilessHeaders)
    } else if contentType == "application/json" {
      head.append(contentsOf: template.jsonHeaders)
    } else {
      head.append(contentsOf: "\r\ncontent-type: ".utf8)
      head.append(contentsOf: contentType.utf8)
      head.append(contentsOf: template.bodilessHeaders)
    }
    for (name, value) in extraHeaders where isToken(name) && isFieldValue(value) { append(name, value, to: &head) }
    head.append(contentsOf: "\r\n".utf8)
    var buffer = ByteBufferAllocator().buffer(capacity: head.count + (body?.count ?? 0))
    buffer.writeBytes(head)
    if let body { buffer.writeBytes(body) }
    return buffer
  }

  private static func append(_ name: String, _ value: String, to head: inout [UInt8]) {
    head.append(contentsOf: name.utf8)
    head.append(contentsOf: ": ".utf8)
    head.append(contentsOf: value.utf8)
    head.append(contentsOf: "\r\n".utf8)
  }

  private static func appendDecimal(_ value: Int, to head: inout [UInt8]) {
    if value >= 10 { appendDecimal(value / 10, to: &head) }
    head.append(UInt8(ascii: "0") + UInt8(value % 10))
  }

  /// RFC 9110's token characters, by ASCII code.
  private static let tokenCharacters: [Bool] = (0..<128).map { code in
    let byte = UInt8(code)
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
      UInt8(ascii: "0")...UInt8(ascii: "9"):
      return true
    default:
      return "!#$%&'*+-.^_`|~".utf8.contains(byte)
    }
  }

  /// A header name: RFC 9110's token characters. Anything else is dropped rather than allowed to
  /// split or smuggle a request.
  static func isToken(_ name: String) -> Bool {
    let table = tokenCharacters
    return !name.isEmpty && name.utf8.allSatisfy { $0 < 128 && table[Int($0)] }
  }

  /// A header value without control characters (so no CR, LF or NUL).
  static func isFieldValue(_ value: String) -> Bool {
    value.utf8.allSatisfy { $0 == UInt8(ascii: "\t") || ($0 >= 0x20 && $0 != 0x7F) }
  }
}
