import NIOCore

/// An incremental parser for the HTTP/1.1 responses of the gateway's own upstream connections.
///
/// NIO's general codec costs several allocations, a header dictionary and a pipeline hop per
/// body chunk; the gateway needs only the status, two headers and the body, so this reads them
/// straight from the socket's buffers. Body pieces are read where they lie, never copied.
package struct HTTP1ResponseParser {
  package enum Event {
    case head(status: Int, contentType: String, keepAlive: Bool)
    /// Body bytes at these indices of the buffer given to `next`, which has moved past them:
    /// read them there (`withVeryUnsafeBytes`, `getBytes`) before the buffer changes. Indices
    /// rather than a slice: a slice of the buffer retains and releases its storage, atomically,
    /// for every streamed event.
    case body(Range<Int>)
    /// A whole chunk's data, its size line and CRLF in the same read: body bytes as `.body`'s,
    /// which a reader may take as one piece (vLLM writes each event as a chunk of its own).
    case wholeChunk(Range<Int>)
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
        let piece = Self.readBody(&buffer, upTo: remaining)
        state = remaining == piece.count ? .ending : .fixedBody(remaining: remaining - piece.count)
        return .body(piece)
      case .bodyUntilClose:
        return .body(Self.readBody(&buffer, upTo: buffer.readableBytes))
      case .chunkSize:
        // Read in place, without a slice: this runs once per streamed event.
        guard let line = try Self.chunkSizeLine(in: buffer) else {
          try carry(&buffer, limit: Self.maximumLineSize)
          return nil
        }
        // vLLM's usual chunk, one event with its CRLF, all in this read: taken in one step, so
        // the call after it finds the buffer used up, without a turn through `chunkDataEnd`.
        if line.size > 0 && line.isWhole {
          let start = buffer.readerIndex &+ line.length
          buffer.moveReaderIndex(forwardBy: line.length &+ line.size &+ 2)
          return .wholeChunk(start..<(start &+ line.size))
        }
        buffer.moveReaderIndex(forwardBy: line.length)
        state = line.size == 0 ? .trailers : .chunkData(remaining: line.size)
      case .chunkData(let remaining):
        let piece = Self.readBody(&buffer, upTo: remaining)
        state = remaining == piece.count ? .chunkDataEnd : .chunkData(remaining: remaining - piece.count)
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

  /// How the body of a response is delimited.
  private enum Framing {
    case chunked
    case length(Int)
    case untilClose
  }

  /// A complete status line and header block, or nil (and nothing consumed) when incomplete.
  private mutating func readHead(_ buffer: inout ByteBuffer) throws(Malformed) -> Head? {
    guard let (head, length, framing) = try Self.parseHead(buffer.readableBytesUInt8Span) else { return nil }
    buffer.moveReaderIndex(forwardBy: length)
    if (100..<200).contains(head.status) {
      // An interim response (100 Continue and the like): the real one follows.
      return try readHead(&buffer)
    }
    var complete = head
    if head.status == 204 || head.status == 304 {
      state = .ending
    } else {
      switch framing {
      case .chunked: state = .chunkSize
      case .length(let length): state = length == 0 ? .ending : .fixedBody(remaining: length)
      case .untilClose:
        state = .bodyUntilClose
        complete.keepAlive = false
      }
    }
    return complete
  }

  /// The head at the start of `bytes`, its length with its blank line, and the body's framing;
  /// nil when it is not complete yet. Read in place over a span (whose bounds checks keep its
  /// count in a register): header names are matched by their bytes, and only a value that
  /// matters and is not one of vLLM's usual ones becomes a string.
  private static func parseHead(_ bytes: Span<UInt8>) throws(Malformed) -> (Head, Int, Framing)? {
    guard var lineEnd = lineFeed(in: bytes, from: 0) else { return nil }
    var head = try statusLine(bytes, 0..<trimmingCR(bytes, lineEnd))
    var contentLength: Int? = nil
    var chunked = false
    while true {
      let lineStart = lineEnd + 1
      guard let end = lineFeed(in: bytes, from: lineStart) else { return nil }
      lineEnd = end
      let lineEndWithoutCR = max(trimmingCR(bytes, lineEnd), lineStart)
      if lineEndWithoutCR == lineStart { break }
      guard let colon = bytes.firstIndex(of: UInt8(ascii: ":"), in: lineStart..<lineEndWithoutCR), colon > lineStart
      else {
        throw Malformed(description: "a header line without a name")
      }
      // Only these four matter: content-type, content-length, transfer-encoding, connection.
      guard let name = KnownHeader(bytes, lineStart..<colon) else { continue }
      var valueStart = colon + 1
      var valueEnd = lineEndWithoutCR
      while valueStart < valueEnd && (bytes[valueStart] == 0x20 || bytes[valueStart] == 0x09) { valueStart += 1 }
      while valueEnd > valueStart && (bytes[valueEnd - 1] == 0x20 || bytes[valueEnd - 1] == 0x09) { valueEnd -= 1 }
      let value = valueStart..<valueEnd
      switch name {
      case .contentType:
        head.contentType = commonValue(bytes, value) ?? text(bytes, value)
      case .contentLength:
        guard let length = decimal(bytes, value), contentLength == nil || contentLength == length else {
          throw Malformed(description: "invalid content-length \"\(text(bytes, value))\"")
        }
        contentLength = length
      case .transferEncoding:
        let text = text(bytes, value)
        chunked = text.lowercased().split(separator: ",").last.map(trimmed) == "chunked"
        if !chunked { throw Malformed(description: "unsupported transfer-encoding \"\(text)\"") }
      case .connection:
        let options = text(bytes, value).lowercased().split(separator: ",").map(trimmed)
        if options.contains("close") { head.keepAlive = false }
        if options.contains("keep-alive") { head.keepAlive = true }
      }
    }
    let framing: Framing = chunked ? .chunked : contentLength.map { .length($0) } ?? .untilClose
    return (head, lineEnd + 1, framing)
  }

  /// The first line feed at or after `start`.
  private static func lineFeed(in bytes: Span<UInt8>, from start: Int) -> Int? {
    bytes.firstIndex(of: UInt8(ascii: "\n"), in: start..<bytes.count)
  }

  /// The end of the line that ends with the LF at `lineFeed`, without its CR if it has one.
  private static func trimmingCR(_ bytes: Span<UInt8>, _ lineFeed: Int) -> Int {
    lineFeed > 0 && bytes[lineFeed - 1] == UInt8(ascii: "\r") ? lineFeed - 1 : lineFeed
  }

  /// The bytes in `range` as text, for the values that are not one of the usual ones.
  private static func text(_ bytes: Span<UInt8>, _ range: Range<Int>) -> String {
    var copy: [UInt8] = []
    copy.reserveCapacity(range.count)
    for index in range { copy.append(bytes[index]) }
    return String(decoding: copy, as: UTF8.self)
  }

  /// A non-negative decimal of at most 18 digits, or nil.
  private static func decimal(_ bytes: Span<UInt8>, _ digits: Range<Int>) -> Int? {
    guard !digits.isEmpty, digits.count <= 18 else { return nil }
    var value = 0
    for index in digits {
      let digit = bytes[index] &- UInt8(ascii: "0")
      guard digit < 10 else { return nil }
      value = value * 10 + Int(digit)
    }
    return value
  }

  private static func statusLine(_ bytes: Span<UInt8>, _ line: Range<Int>) throws(Malformed) -> Head {
    // "HTTP/1.x NNN reason"
    let start = line.lowerBound
    guard line.count >= 12, matches(bytes, start..<start + 7, "HTTP/1."), bytes[start + 8] == UInt8(ascii: " ")
    else { throw Malformed(description: "not an HTTP/1.1 status line") }
    let minor = bytes[start + 7]
    guard let status = decimal(bytes, start + 9..<start + 12) else {
      throw Malformed(description: "not an HTTP/1.1 status line")
    }
    return Head(status: status, keepAlive: minor != UInt8(ascii: "0"))
  }

  /// Moves past up to `limit` readable bytes of body, returning where they are.
  private static func readBody(_ buffer: inout ByteBuffer, upTo limit: Int) -> Range<Int> {
    let start = buffer.readerIndex
    buffer.moveReaderIndex(forwardBy: min(limit, buffer.readableBytes))
    return start..<buffer.readerIndex
  }

  /// A chunk's size line: the size, the line's length with its line end, and whether the
  /// chunk's data and the CRLF after it follow in the same bytes.
  private struct ChunkSizeLine {
    var size: Int
    var length: Int
    var isWhole: Bool

    init(size: Int, length: Int, in bytes: Span<UInt8>) {
      self.size = size
      self.length = length
      isWhole = HTTP1ResponseParser.isCRLF(bytes, at: length &+ size)
    }
  }

  /// Whether `bytes` hold a CR and an LF at `index`, which may lie past their end.
  private static func isCRLF(_ bytes: Span<UInt8>, at index: Int) -> Bool {
    index < bytes.count &- 1 && bytes[index] == UInt8(ascii: "\r") && bytes[index &+ 1] == UInt8(ascii: "\n")
  }

  /// The chunk-size line at the start of `buffer`, or nil when it is not complete yet.
  private static func chunkSizeLine(in buffer: ByteBuffer) throws(Malformed) -> ChunkSizeLine? {
    try chunkSizeLine(buffer.readableBytesUInt8Span)
  }

  /// The same over the buffer's readable bytes, as a span (see `parseHead`).
  private static func chunkSizeLine(_ view: Span<UInt8>) throws(Malformed) -> ChunkSizeLine? {
    var index = 0
    var size = 0
    var digits = 0
    // Hex digits first. Fifteen at most, so the arithmetic cannot overflow.
    while index < view.count {
      let byte = view[index]
      let value: UInt8
      if byte &- UInt8(ascii: "0") < 10 {
        value = byte &- UInt8(ascii: "0")
      } else if (byte | 0x20) &- UInt8(ascii: "a") < 6 {
        // Either case of a to f: 0x20 is the only bit in which the two differ.
        value = (byte | 0x20) &- UInt8(ascii: "a") &+ 10
      } else {
        break
      }
      digits &+= 1
      guard digits <= 15 else { throw Malformed(description: "chunk size too large") }
      size = size &<< 4 | Int(value)
      index &+= 1
    }
    guard index < view.count else { return nil }
    guard digits > 0 else { throw Malformed(description: "invalid chunk size") }
    switch view[index] {
    case UInt8(ascii: "\n"):
      return ChunkSizeLine(size: size, length: index &+ 1, in: view)
    case UInt8(ascii: "\r"):
      guard index + 1 < view.count else { return nil }
      guard view[index + 1] == UInt8(ascii: "\n") else { throw Malformed(description: "invalid chunk size") }
      return ChunkSizeLine(size: size, length: index &+ 2, in: view)
    case UInt8(ascii: ";"), UInt8(ascii: " "), UInt8(ascii: "\t"):
      // A chunk extension (or padding before one) follows; extensions carry nothing we need.
      guard let newline = lineFeed(in: view, from: index) else { return nil }
      return ChunkSizeLine(size: size, length: newline &+ 1, in: view)
    default:
      throw Malformed(description: "invalid chunk size")
    }
  }
}

/// vLLM's usual content types as constants: a value of more than 15 bytes would otherwise cost a
/// string allocation on every response.
private func commonValue(_ bytes: Span<UInt8>, _ range: Range<Int>) -> String? {
  // Lengths first: comparing a content-length's digits byte by byte with each constant took
  // about 320 instructions a header (callgrind).
  switch range.count {
  case 16: matches(bytes, range, "application/json") ? "application/json" : nil
  case 17: matches(bytes, range, "text/event-stream") ? "text/event-stream" : nil
  case 32: matches(bytes, range, "text/event-stream; charset=utf-8") ? "text/event-stream; charset=utf-8" : nil
  default: nil
  }
}

/// Whether the bytes in `range` are exactly `text`'s (of the same length).
private func matches(_ bytes: Span<UInt8>, _ range: Range<Int>, _ text: StaticString) -> Bool {
  guard range.count == text.utf8CodeUnitCount else { return false }
  return text.withUTF8Buffer { expected in
    var index = range.lowerBound
    for byte in expected {
      if bytes[index] != byte { return false }
      index += 1
    }
    return true
  }
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

  /// The header a name stands for, compared without regard to case, eight bytes at a time: byte
  /// by byte took about 10 instructions a byte, for two or three names a response (callgrind).
  /// The constants are the names' bytes as little-endian words: "content-", "ent-type" (from 4),
  /// "t-length" (from 6), "transfer", "-encodin", "encoding", "connecti", "nnection".
  init?(_ bytes: Span<UInt8>, _ name: Range<Int>) {
    let raw = bytes.bytes
    let start = name.lowerBound
    switch name.count {
    case 12:
      guard Self.word(raw, start, is: 0x2D74_6E65_746E_6F63), Self.word(raw, start &+ 4, is: 0x6570_7974_2D74_6E65)
      else { return nil }
      self = .contentType
    case 14:
      guard Self.word(raw, start, is: 0x2D74_6E65_746E_6F63), Self.word(raw, start &+ 6, is: 0x6874_676E_656C_2D74)
      else { return nil }
      self = .contentLength
    case 17:
      guard Self.word(raw, start, is: 0x7265_6673_6E61_7274), Self.word(raw, start &+ 8, is: 0x6E69_646F_636E_652D),
        Self.word(raw, start &+ 9, is: 0x676E_6964_6F63_6E65)
      else { return nil }
      self = .transferEncoding
    case 10:
      guard Self.word(raw, start, is: 0x6974_6365_6E6E_6F63), Self.word(raw, start &+ 2, is: 0x6E6F_6974_6365_6E6E)
      else { return nil }
      self = .connection
    default:
      return nil
    }
  }

  /// Whether the eight bytes at `offset` are `expected`'s, whose bytes are lowercase letters and
  /// dashes, a letter matching in either case: the case bit (0x20) is set where `expected` has a
  /// letter (a byte of 0x61 or more, which adding 0x1F carries into the top bit) and only there,
  /// so a dash must be a dash.
  @inline(__always)
  private static func word(_ raw: RawSpan, _ offset: Int, is expected: UInt64) -> Bool {
    let caseBits = ((expected &+ 0x1F1F_1F1F_1F1F_1F1F) & 0x8080_8080_8080_8080) &>> 2
    return raw.littleEndianWord(at: offset) | caseBits == expected
  }
}
