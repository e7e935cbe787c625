import NIOCore

/// An incremental parser for the HTTP/1.1 responses of the gateway's own upstream connections.
///
/// NIO's general codec costs several allocations, a header dictionary and a pipeline hop per
/// body chunk; the gateway needs only the status, two headers and the body, so this reads them
/// straight from the socket's buffers. Body pieces are slices of those buffers, never copies.
package struct HTTP1ResponseParser {
  package enum Event {
    case head(status: Int, contentType: String, keepAlive: Bool)
    case body(ByteBuffer)
    case end
  }

  package struct Malformed: Error, CustomStringConvertible {
    package let description: String
  }

  private enum State {
    case head
    case fixedBody(remaining: Int)
    case chunkSize
    case chunkData(remaining: Int)
    case chunkDataEnd
    case trailers
    case bodyUntilClose
    /// The response is complete; `.end` is the next event.
    case ending
    case done
  }

  /// Longest status line plus headers accepted, and longest chunk-size or trailer line.
  package static let maximumHeadSize = 64 * 1024
  package static let maximumLineSize = 8 * 1024

  private var state = State.head
  /// Bytes of a head or line that arrived split across reads.
  private var carried: ByteBuffer? = nil

  package init() {}

  /// Makes the parser ready for the next response on a keep-alive connection.
  package mutating func reset() {
    state = .head
    carried = nil
  }

  /// The next event from what was read, or nil once `buffer` is used up without completing one
  /// (a partial line is kept for the next read). One event per call, so that whoever handles
  /// an event may start the connection's next request before the parser is called again.
  /// Throws on bytes that are not an HTTP/1.1 response.
  package mutating func next(_ buffer: inout ByteBuffer) throws(Malformed) -> Event? {
    if var carried, buffer.readableBytes > 0 {
      self.carried = nil
      carried.writeBuffer(&buffer)
      buffer = carried
    }
    while true {
      if case .ending = state {
        state = .done
        return .end
      }
      guard buffer.readableBytes > 0 else { return nil }
      switch state {
      case .head:
        guard let head = try readHead(&buffer) else {
          try carry(&buffer, limit: Self.maximumHeadSize)
          return nil
        }
        return .head(status: head.status, contentType: head.contentType, keepAlive: head.keepAlive)
      case .fixedBody(let remaining):
        let piece = buffer.readSlice(length: min(remaining, buffer.readableBytes))!
        state = remaining == piece.readableBytes ? .ending : .fixedBody(remaining: remaining - piece.readableBytes)
        return .body(piece)
      case .bodyUntilClose:
        let piece = buffer
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return .body(piece)
      case .chunkSize:
        // Read in place, without a slice: this runs once per streamed event.
        guard let (size, lineLength) = try Self.chunkSizeLine(in: buffer) else {
          try carry(&buffer, limit: Self.maximumLineSize)
          return nil
        }
        buffer.moveReaderIndex(forwardBy: lineLength)
        state = size == 0 ? .trailers : .chunkData(remaining: size)
      case .chunkData(let remaining):
        let piece = buffer.readSlice(length: min(remaining, buffer.readableBytes))!
        state =
          remaining == piece.readableBytes ? .chunkDataEnd : .chunkData(remaining: remaining - piece.readableBytes)
        return .body(piece)
      case .chunkDataEnd:
        // CRLF (or a bare LF) after the data, checked in place.
        let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self)!
        if first == UInt8(ascii: "\n") {
          buffer.moveReaderIndex(forwardBy: 1)
        } else if first == UInt8(ascii: "\r") {
          guard let second = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self) else {
            try carry(&buffer, limit: 2)
            return nil
          }
          guard second == UInt8(ascii: "\n") else { throw Malformed(description: "chunk data longer than its size") }
          buffer.moveReaderIndex(forwardBy: 2)
        } else {
          throw Malformed(description: "chunk data longer than its size")
        }
        state = .chunkSize
      case .trailers:
        guard let line = readLine(&buffer) else {
          try carry(&buffer, limit: Self.maximumLineSize)
          return nil
        }
        if line.readableBytes == 0 { state = .ending }
      case .ending, .done:
        throw Malformed(description: "bytes after the end of the response")
      }
    }
  }

  /// The connection closed: true when that ends the body (a response delimited by the close),
  /// false when the response was cut short.
  package mutating func connectionClosed() -> Bool {
    guard case .bodyUntilClose = state else { return false }
    state = .done
    return true
  }

  /// Keeps the incomplete rest of `buffer` for the next read.
  private mutating func carry(_ buffer: inout ByteBuffer, limit: Int) throws(Malformed) {
    guard buffer.readableBytes <= limit else {
      throw Malformed(description: "a header or chunk line longer than \(limit) bytes")
    }
    carried = buffer
    buffer.moveReaderIndex(to: buffer.writerIndex)
  }

  // MARK: Lines

  /// The next line without its CRLF (a bare LF is accepted too), or nil when it is incomplete.
  private func readLine(_ buffer: inout ByteBuffer) -> ByteBuffer? {
    guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
    let length = newline - buffer.readerIndex
    var line = buffer.readSlice(length: length)!
    buffer.moveReaderIndex(forwardBy: 1)
    if line.readableBytesView.last == UInt8(ascii: "\r") { line.moveWriterIndex(to: line.writerIndex - 1) }
    return line
  }

  private struct Head {
    var status: Int
    var contentType = ""
    var keepAlive: Bool
  }

  /// A complete status line and header block, or nil (and nothing consumed) when incomplete.
  /// Read in place over one view: header names are matched by their bytes, and only a value
  /// that matters and is not one of vLLM's usual ones becomes a string.
  private mutating func readHead(_ buffer: inout ByteBuffer) throws(Malformed) -> Head? {
    let view = buffer.readableBytesView
    guard var lineEnd = view.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
    var head = try Self.statusLine(view[view.startIndex..<Self.trimmingCR(view, lineEnd)])
    var contentLength: Int? = nil
    var chunked = false
    while true {
      let lineStart = lineEnd + 1
      guard let end = view[lineStart...].firstIndex(of: UInt8(ascii: "\n")) else { return nil }
      lineEnd = end
      let line = view[lineStart..<Self.trimmingCR(view, lineEnd)]
      if line.isEmpty { break }
      guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else {
        throw Malformed(description: "a header line without a name")
      }
      // Only these four matter: content-type, content-length, transfer-encoding, connection.
      guard let name = KnownHeader(line[..<colon]) else { continue }
      var valueStart = colon + 1
      var valueEnd = line.endIndex
      while valueStart < valueEnd && (view[valueStart] == 0x20 || view[valueStart] == 0x09) { valueStart += 1 }
      while valueEnd > valueStart && (view[valueEnd - 1] == 0x20 || view[valueEnd - 1] == 0x09) { valueEnd -= 1 }
      let value = view[valueStart..<valueEnd]
      switch name {
      case .contentType:
        head.contentType = commonValue(value) ?? String(decoding: value, as: UTF8.self)
      case .contentLength:
        guard let length = Self.decimal(value), contentLength == nil || contentLength == length else {
          throw Malformed(description: "invalid content-length \"\(String(decoding: value, as: UTF8.self))\"")
        }
        contentLength = length
      case .transferEncoding:
        let text = String(decoding: value, as: UTF8.self)
        chunked = text.lowercased().split(separator: ",").last.map(trimmed) == "chunked"
        if !chunked { throw Malformed(description: "unsupported transfer-encoding \"\(text)\"") }
      case .connection:
        let options = String(decoding: value, as: UTF8.self).lowercased().split(separator: ",").map(trimmed)
        if options.contains("close") { head.keepAlive = false }
        if options.contains("keep-alive") { head.keepAlive = true }
      }
    }
    buffer.moveReaderIndex(forwardBy: lineEnd + 1 - view.startIndex)
    if (100..<200).contains(head.status) {
      // An interim response (100 Continue and the like): the real one follows.
      return try readHead(&buffer)
    }
    if head.status == 204 || head.status == 304 {
      state = .ending
    } else if chunked {
      state = .chunkSize
    } else if let contentLength {
      state = contentLength == 0 ? .ending : .fixedBody(remaining: contentLength)
    } else {
      state = .bodyUntilClose
      head.keepAlive = false
    }
    return head
  }

  /// The end of the line that ends with the LF at `lineFeed`, without its CR if it has one.
  private static func trimmingCR(_ view: ByteBufferView, _ lineFeed: Int) -> Int {
    lineFeed > view.startIndex && view[lineFeed - 1] == UInt8(ascii: "\r") ? lineFeed - 1 : lineFeed
  }

  /// A non-negative decimal of at most 18 digits, or nil.
  private static func decimal(_ digits: ByteBufferView.SubSequence) -> Int? {
    guard !digits.isEmpty, digits.count <= 18 else { return nil }
    var value = 0
    for byte in digits {
      guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
      value = value * 10 + Int(byte - UInt8(ascii: "0"))
    }
    return value
  }

  private static func statusLine(_ bytes: ByteBufferView.SubSequence) throws(Malformed) -> Head {
    // "HTTP/1.x NNN reason"
    guard bytes.count >= 12, bytes.starts(with: "HTTP/1.".utf8), bytes[bytes.startIndex + 8] == UInt8(ascii: " ")
    else { throw Malformed(description: "not an HTTP/1.1 status line") }
    let minor = bytes[bytes.startIndex + 7]
    var status = 0
    for byte in bytes[(bytes.startIndex + 9)..<(bytes.startIndex + 12)] {
      guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else {
        throw Malformed(description: "not an HTTP/1.1 status line")
      }
      status = status * 10 + Int(byte - UInt8(ascii: "0"))
    }
    return Head(status: status, keepAlive: minor != UInt8(ascii: "0"))
  }

  /// A chunk-size line at the start of `buffer`: the size and the line's length with its line
  /// end, or nil when the line is not complete yet.
  private static func chunkSizeLine(in buffer: ByteBuffer) throws(Malformed) -> (size: Int, length: Int)? {
    let view = buffer.readableBytesView
    var index = view.startIndex
    var size = 0
    var digits = 0
    // Hex digits first.
    while index < view.endIndex {
      let byte = view[index]
      let value: Int
      switch byte {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): value = Int(byte - UInt8(ascii: "0"))
      case UInt8(ascii: "a")...UInt8(ascii: "f"): value = Int(byte - UInt8(ascii: "a")) + 10
      case UInt8(ascii: "A")...UInt8(ascii: "F"): value = Int(byte - UInt8(ascii: "A")) + 10
      default: value = -1
      }
      guard value >= 0 else { break }
      digits += 1
      guard digits <= 15 else { throw Malformed(description: "chunk size too large") }
      size = size * 16 + value
      index += 1
    }
    guard index < view.endIndex else { return nil }
    guard digits > 0 else { throw Malformed(description: "invalid chunk size") }
    switch view[index] {
    case UInt8(ascii: "\n"):
      return (size, index + 1 - view.startIndex)
    case UInt8(ascii: "\r"):
      guard index + 1 < view.endIndex else { return nil }
      guard view[index + 1] == UInt8(ascii: "\n") else { throw Malformed(description: "invalid chunk size") }
      return (size, index + 2 - view.startIndex)
    case UInt8(ascii: ";"), UInt8(ascii: " "), UInt8(ascii: "\t"):
      // A chunk extension (or padding before one) follows; extensions carry nothing we need.
      guard let newline = view[index...].firstIndex(of: UInt8(ascii: "\n")) else { return nil }
      return (size, newline + 1 - view.startIndex)
    default:
      throw Malformed(description: "invalid chunk size")
    }
  }
}

/// vLLM's usual content types as constants: a value of more than 15 bytes would otherwise cost a
/// string allocation on every response.
private func commonValue(_ bytes: ByteBufferView.SubSequence) -> String? {
  // Lengths first: comparing a content-length's digits byte by byte with each constant took
  // about 320 instructions a header (callgrind).
  let known: String
  switch bytes.count {
  case 16: known = "application/json"
  case 17: known = "text/event-stream"
  case 31: known = "text/event-stream; charset=utf-8"
  default: return nil
  }
  return bytes.elementsEqual(known.utf8) ? known : nil
}

/// The text without the spaces and tabs HTTP allows around a header value or list element.
private func trimmed(_ text: Substring) -> String {
  let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
  var text = text.drop(while: isBlank)
  while let last = text.last, isBlank(last) { text = text.dropLast() }
  return String(text)
}

/// The response headers the parser reads; the others are skipped by their names' bytes.
private enum KnownHeader {
  case contentType, contentLength, transferEncoding, connection

  /// The header a name stands for, compared without regard to case.
  init?(_ name: ByteBufferView.SubSequence) {
    let known: (KnownHeader, StaticString)
    switch name.count {
    case 12: known = (.contentType, "content-type")
    case 14: known = (.contentLength, "content-length")
    case 17: known = (.transferEncoding, "transfer-encoding")
    case 10: known = (.connection, "connection")
    default: return nil
    }
    var index = name.startIndex
    let matches = known.1.withUTF8Buffer { expected in
      expected.allSatisfy { byte in
        defer { index += 1 }
        let actual = name[index]
        // An ASCII letter's two cases differ only in bit 0x20.
        return actual == byte || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z") && actual | 0x20 == byte)
      }
    }
    guard matches else { return nil }
    self = known.0
  }
}
