#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// One Server-Sent Event: its `event:` name, if any, and its data (several `data:` lines joined
/// with newlines).
public struct ServerSentEvent: Sendable, Equatable {
  public var event: String?
  public var data: [UInt8]
  /// When the read that completed the event arrived (monotonic nanoseconds, as
  /// `NIODeadline.uptimeNanoseconds`; 0 if unknown): where the gateway's latency statistics start.
  public var receivedAt: UInt64

  public init(event: String? = nil, data: [UInt8], receivedAt: UInt64 = 0) {
    self.event = event
    self.data = data
    self.receivedAt = receivedAt
  }

  public static func == (lhs: Self, rhs: Self) -> Bool {
    lhs.event == rhs.event && lhs.data == rhs.data
  }

  /// vLLM's end-of-stream marker.
  public var isDone: Bool { data.count == 6 && data.elementsEqual("[DONE]".utf8) }
}

/// Splits an event stream into events as bytes arrive, however the reads cut it: lines split
/// across reads, `\n`, `\r\n` or `\r` endings, multi-line data, comments and unknown fields.
public struct ServerSentEventParser: Sendable {
  private var line: [UInt8] = []
  private var data: [UInt8] = []
  private var hasData = false
  private var event: String? = nil
  private var lastWasCarriageReturn = false
  /// The arrival time of the read being parsed, given to the events it completes.
  private var receivedAt: UInt64 = 0
  /// A line longer than this is a broken or hostile upstream, not an event.
  public let maximumEventSize: Int

  public struct Failure: Error, Equatable {
    public let reason: String
  }

  public init(maximumEventSize: Int = 16 * 1024 * 1024) {
    self.maximumEventSize = maximumEventSize
  }

  public mutating func feed<Bytes: Sequence<UInt8>>(
    _ bytes: Bytes, onEvent: (ServerSentEvent) throws -> Void
  ) throws {
    try Array(bytes).withUnsafeBytes { try feed(raw: $0, onEvent: onEvent) }
  }

  /// The same over raw bytes. A line that arrived whole is read where it lies; only a line cut
  /// by the end of a read is gathered, so an event's data is copied once, into the event. An
  /// unnamed event whose one data line and blank line arrived whole in this read is offered to
  /// `onBorrowedEvent` first, its data where it lies (with the read's arrival time); when that
  /// answers false, it goes to `onEvent` as usual.
  // Unsafe buffer: the parser reads NIO's receive buffer where it lies, borrowed for this call
  // only; no pointer outlives it.
  public mutating func feed(
    raw bytes: UnsafeRawBufferPointer, receivedAt: UInt64 = 0,
    onBorrowedEvent: (_ data: Span<UInt8>, _ receivedAt: UInt64) throws -> Bool = { _, _ in false },
    onEvent: (ServerSentEvent) throws -> Void
  ) throws {
    self.receivedAt = receivedAt
    var index = 0
    while index < bytes.count {
      if lastWasCarriageReturn {
        lastWasCarriageReturn = false
        if bytes[index] == 0x0A {
          index += 1
          continue
        }
      }
      let end = Self.lineEnd(in: bytes, from: index)
      let run = UnsafeRawBufferPointer(rebasing: bytes[index..<end])
      // Without an event under way, `data` holds the last one's bytes, which do not count.
      guard line.count + (hasData ? data.count : 0) + run.count <= maximumEventSize else {
        throw Failure(reason: "event larger than \(maximumEventSize) bytes")
      }
      guard end < bytes.count else {
        line.append(contentsOf: run)
        return
      }
      lastWasCarriageReturn = bytes[end] == 0x0D
      if line.isEmpty {
        // vLLM's usual event, `data: ...` and the blank line after it both in this read: one
        // step, without a turn of the loop and a call for the blank line.
        if !hasData && bytes[end] == 0x0A && end &+ 1 < bytes.count && bytes[end &+ 1] == 0x0A,
          let value = Self.dataLineValue(run)
        {
          index = end &+ 2
          // Unsafe: a Span over the read's bytes, which outlive the call it is lent to.
          if event == nil, try onBorrowedEvent(Span(_unsafeBytes: value), receivedAt) { continue }
          replaceData(with: value)
          try endEvent(onEvent)
          continue
        }
        try endLine(run, onEvent)
      } else {
        line.append(contentsOf: run)
        let gathered = line
        line.removeAll(keepingCapacity: true)
        try gathered.withUnsafeBytes { try endLine($0, onEvent) }
      }
      index = end + 1
    }
  }

  /// The position of the next CR or LF at or after `start`, or the end of `bytes`. Event lines
  /// are long (a whole JSON chunk): libc's memchr finds the LF many bytes at a time, then the
  /// first CR before it (vLLM's lines end with a bare LF). Eight bytes at a time in Swift cost
  /// about 680 instructions a chunk (callgrind), memchr a tenth of that.
  private static func lineEnd(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
    guard start < bytes.count, let base = bytes.baseAddress else { return bytes.count }
    // The blank line that ends each event: no search (two memchr calls of ~35 instructions).
    if bytes[start] == 0x0A || bytes[start] == 0x0D { return start }
    let from = base + start
    let length = bytes.count - start
    let lineFeed = memchr(from, 0x0A, length).map { UnsafeRawPointer($0) - base }
    let carriageReturn = memchr(from, 0x0D, (lineFeed ?? bytes.count) - start).map { UnsafeRawPointer($0) - base }
    return carriageReturn ?? lineFeed ?? bytes.count
  }

  /// Whether bytes of an unfinished event are buffered (a stream cut mid-event).
  public var hasPartialEvent: Bool { !line.isEmpty || hasData }

  /// The value of the `data:` line in `bytes`, when they start a new event with that line and
  /// end it with a blank line, both ended by a bare LF, as vLLM writes each event (in a chunk of
  /// its own): what the event's data is, provided the value holds no CR or LF, which is not
  /// checked here. That check is the taker's (see `VLLMResponseHandler.vllmEvent(borrowing:)`):
  /// finding the line's end cost two memchr calls a chunk (about 120 instructions), and a taker
  /// that compares the bytes with ones it kept, and checks the rest is plain JSON text, has
  /// made it already. Nil when anything of an event is under way, or for any other bytes:
  /// those go through `feed`.
  public func wholeEventValue(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
    let count = bytes.count
    guard count >= 2, count <= maximumEventSize, line.isEmpty, !hasData, event == nil, !lastWasCarriageReturn,
      bytes[count &- 1] == 0x0A, bytes[count &- 2] == 0x0A
    else { return nil }
    return Self.dataLineValue(UnsafeRawBufferPointer(rebasing: bytes[..<(count &- 2)]))
  }

  /// Largest storage handed back for other parsers to reuse; a larger one (a huge event) goes.
  static let largestLentStorage = 64 * 1024

  /// Takes `spare` to gather event data in, when the parser holds no storage of its own. With
  /// `returnStorage(to:)` after each feed, the parsers fed in turn (an event loop's streams) share
  /// one array, and a stream waiting for its next event holds none: ten thousand of them would
  /// otherwise keep a few hundred bytes each.
  public mutating func borrowStorage(from spare: inout [UInt8]) {
    guard data.capacity == 0 else { return }
    swap(&data, &spare)
  }

  /// Hands the storage to `spare` when no event is partly gathered in it (else keeps it for the
  /// rest of that event).
  public mutating func returnStorage(to spare: inout [UInt8]) {
    guard !hasData, data.capacity > 0 else { return }
    if data.capacity <= Self.largestLentStorage { swap(&data, &spare) }
    // After the swap this is usually the empty array already: not released again for nothing.
    if data.capacity > 0 { data = [] }
  }

  /// The value of a `data:` line (after the colon and one space), or nil for any other line.
  /// Inlined: every streamed event's line goes through it (a call cost about 15 instructions a
  /// chunk, callgrind).
  @inline(__always)
  private static func dataLineValue(_ line: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
    guard line.count >= 5 && line[4] == UInt8(ascii: ":") && startsWithData(line) else { return nil }
    let valueStart = line.count > 5 && line[5] == UInt8(ascii: " ") ? 6 : 5
    return UnsafeRawBufferPointer(rebasing: line[valueStart...])
  }

  /// Whether `bytes` start with the field name `data`, compared byte by byte: the generic
  /// comparison with a string's UTF-8 cost about 250 instructions a line, a tenth of a chunk's
  /// relay (callgrind).
  private static func startsWithData(_ bytes: UnsafeRawBufferPointer) -> Bool {
    bytes.count >= 4 && bytes[0] == UInt8(ascii: "d") && bytes[1] == UInt8(ascii: "a")
      && bytes[2] == UInt8(ascii: "t") && bytes[3] == UInt8(ascii: "a")
  }

  /// A data line's value, joined to the event's earlier ones with a newline.
  private mutating func appendData(_ value: UnsafeRawBufferPointer) {
    guard hasData else {
      replaceData(with: value)
      return
    }
    data.append(0x0A)
    data.append(contentsOf: value)
  }

  /// An event's first data line.
  private mutating func replaceData(with value: UnsafeRawBufferPointer) {
    // What the last event left is replaced in one step: emptying the array as each event
    // went out, then appending, made two generic calls of some 70 instructions each.
    data.replaceSubrange(data.startIndex..<data.endIndex, with: value)
    hasData = true
  }

  /// The blank line that dispatches the event gathered so far, if it has data.
  private mutating func endEvent(_ onEvent: (ServerSentEvent) throws -> Void) throws {
    // Taken rather than copied and cleared: an event name is rare, and clearing the nil one
    // released it (a runtime call) each event.
    let name = event.take()
    guard hasData else { return }
    hasData = false
    // The data moves into the event and back, without a retain and a release of its storage;
    // once the handler let go of it, the next event reuses that storage (its first data line
    // replaces what this one left there).
    var completed = ServerSentEvent(event: name, data: [], receivedAt: receivedAt)
    swap(&completed.data, &data)
    defer { swap(&completed.data, &data) }
    try onEvent(completed)
  }

  private mutating func endLine(
    _ line: UnsafeRawBufferPointer, _ onEvent: (ServerSentEvent) throws -> Void
  ) throws {
    if line.isEmpty {
      try endEvent(onEvent)
      return
    }
    if line[0] == UInt8(ascii: ":") { return }  // a comment
    // vLLM writes every line as `data: ...`: recognised in place, without the search for the
    // colon (about 40 instructions a line) and the generic field compare.
    if let value = Self.dataLineValue(line) {
      appendData(value)
      return
    }
    let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.count
    let field = UnsafeRawBufferPointer(rebasing: line[0..<colon])
    var valueStart = colon < line.count ? colon + 1 : colon
    if valueStart < line.count && line[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
    let value = UnsafeRawBufferPointer(rebasing: line[valueStart...])
    // A `data:` line is found above; this is a line of `data` alone, with an empty value.
    if field.count == 4 && Self.startsWithData(field) {
      appendData(value)
    } else if field.elementsEqual("event".utf8) {
      event = String(decoding: value, as: UTF8.self)
    }
  }
}
