import NIOCore
import NIOHTTP1

/// One HTTP/1.1 request to vLLM as bytes: head and body in one buffer, so they leave in one
/// write and the connection's pipeline needs no encoder.
enum HTTP1Request {
  /// The request for `path` (after the template's base path) with a Host and Content-Length, the
  /// client's own headers (the content type when there is a body, accept, authorization), then
  /// `extraHeaders`, of which one whose name or value could split the request is left out.
  /// `starts` keeps the bytes up to the Content-Length value for the paths it has seen. The
  /// request goes into `spare` when there is one (taken: it is nil after).
  static func encode(
    method: HTTPMethod, path: String, template: HTTP1HeadTemplate, contentType: String = "application/json",
    extraHeaders: [(String, String)] = [], body: [UInt8]?, starts: inout HTTP1RequestStarts,
    reusing spare: inout ByteBuffer?
  ) -> ByteBuffer {
    // Straight into the buffer, in four writes of bytes made before: the request line and Host
    // kept per path, the length's digits as one word, the headers every request has with the
    // head's end, the body. Gathering the head in an array first, from the path String's view
    // and half a dozen pieces, cost about 1,900 instructions a call (callgrind); each write to a
    // ByteBuffer costs about 120.
    let start = starts.start(method, path, template: template)
    var headers: [UInt8]
    if body == nil {
      headers = extraHeaders.isEmpty ? template.bodilessHeadersEnded : template.bodilessHeaders
    } else if contentType == "application/json" {
      headers = extraHeaders.isEmpty ? template.jsonHeadersEnded : template.jsonHeaders
    } else {
      headers = Array("\r\ncontent-type: \(contentType)".utf8) + template.bodilessHeaders
      if extraHeaders.isEmpty { headers.append(contentsOf: "\r\n".utf8) }
    }
    let capacity =
      start.count &+ 20 &+ headers.count &+ 2 &+ (body?.count ?? 0)
      &+ (extraHeaders.isEmpty ? 0 : extraHeaders.reduce(0) { $0 &+ $1.0.utf8.count &+ $1.1.utf8.count &+ 4 })
    // A spare buffer still shared (its write not finished) is cleared into new storage.
    var buffer = spare.take() ?? ByteBufferAllocator().buffer(capacity: capacity)
    buffer.clear()
    buffer.reserveCapacity(capacity)
    buffer.writeBytes(start)
    writeDecimal(body?.count ?? 0, to: &buffer)
    buffer.writeBytes(headers)
    if !extraHeaders.isEmpty {
      for (name, value) in extraHeaders where isToken(name) && isFieldValue(value) {
        buffer.writeString(name)
        buffer.writeStaticString(": ")
        buffer.writeString(value)
        buffer.writeStaticString("\r\n")
      }
      buffer.writeStaticString("\r\n")
    }
    if let body { buffer.writeBytes(body) }
    return buffer
  }

  /// The same with nothing kept (tests).
  static func encode(
    method: HTTPMethod, path: String, template: HTTP1HeadTemplate, contentType: String = "application/json",
    extraHeaders: [(String, String)] = [], body: [UInt8]?
  ) -> ByteBuffer {
    var starts = HTTP1RequestStarts()
    var spare: ByteBuffer? = nil
    return encode(
      method: method, path: path, template: template, contentType: contentType, extraHeaders: extraHeaders, body: body,
      starts: &starts, reusing: &spare)
  }

  /// `value`'s decimal digits: up to eight in one word (a write to the buffer costs about 120
  /// instructions, one a digit three times that for a typical length).
  static func writeDecimal(_ value: Int, to buffer: inout ByteBuffer) {
    guard value >= 0, value < 100_000_000 else {
      buffer.writeString(String(value))
      return
    }
    var word: UInt64 = 0
    var digits = 0
    var rest = value
    repeat {
      word = word << 8 | UInt64(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10))
      rest /= 10
      digits &+= 1
    } while rest > 0
    // The first digit is the word's lowest byte: written little-endian, the digits lead and the
    // word's unused high bytes are taken back.
    buffer.writeInteger(word, endianness: .little)
    buffer.moveWriterIndex(to: buffer.writerIndex &- (8 &- digits))
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
