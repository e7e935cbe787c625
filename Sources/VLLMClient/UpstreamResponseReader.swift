import NIOCore
import NIOHTTP1

/// Reads one upstream response, whichever transport carries it: events of an event stream go to
/// the handler as they are parsed, any other body is gathered (up to a limit), and the end
/// becomes the call's outcome.
struct UpstreamResponseReader {
  private(set) var status = 0
  private var contentType = ""
  private var isEventStream = false
  private var parser = ServerSentEventParser()
  private var body: [UInt8] = []
  /// When the last piece of the body arrived (monotonic nanoseconds; 0 if unknown).
  private var lastReceivedAt: UInt64 = 0
  let maximumBodySize: Int

  init(maximumBodySize: Int) {
    self.maximumBodySize = maximumBodySize
  }

  mutating func head(_ head: HTTPResponseHead) {
    self.head(status: Int(head.status.code), contentType: head.headers.first(name: "content-type") ?? "")
  }

  mutating func head(status: Int, contentType: String) {
    self.status = status
    self.contentType = contentType
    isEventStream = (200..<300).contains(status) && contentType.hasPrefix("text/event-stream")
  }

  /// Takes a piece of the body; events go to `onEvent`. Returns the error that ends the call, if
  /// the piece is one too many or the stream is broken.
  mutating func bodyPart(
    _ buffer: ByteBuffer, receivedAt: UInt64 = 0, onEvent: (ServerSentEvent) -> Void
  ) -> VLLMError? {
    // Unsafe buffer: the socket's bytes are read in place, within this call.
    buffer.withUnsafeReadableBytes { bytes in bodyPart(raw: bytes, receivedAt: receivedAt, onEvent: onEvent) }
  }

  /// The same over bytes read in place (the gateway's own connections), borrowed for this call;
  /// see `ServerSentEventParser.feed` for `onBorrowedEvent`.
  mutating func bodyPart(
    raw bytes: UnsafeRawBufferPointer, receivedAt: UInt64 = 0,
    onBorrowedEvent: (_ data: Span<UInt8>, _ receivedAt: UInt64) -> Bool = { _, _ in false },
    onEvent: (ServerSentEvent) -> Void
  ) -> VLLMError? {
    lastReceivedAt = receivedAt
    if isEventStream {
      do {
        try parser.feed(raw: bytes, receivedAt: receivedAt, onBorrowedEvent: onBorrowedEvent, onEvent: onEvent)
      } catch {
        return VLLMError(kind: .malformed, httpStatus: 502, message: "vLLM sent a broken event stream: \(error)")
      }
      return nil
    }
    guard body.count + bytes.count <= maximumBodySize else {
      return VLLMError(kind: .malformed, httpStatus: 502, message: "vLLM's response exceeds \(maximumBodySize) bytes")
    }
    body.append(contentsOf: bytes)
    return nil
  }

  /// See `ServerSentEventParser.wholeEventValue`: nil unless the body is an event stream.
  func wholeEventValue(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
    isEventStream ? parser.wholeEventValue(bytes) : nil
  }

  /// See ServerSentEventParser.borrowStorage(from:) and returnStorage(to:).
  mutating func borrowEventStorage(from spare: inout [UInt8]) {
    if isEventStream { parser.borrowStorage(from: &spare) }
  }

  mutating func returnEventStorage(to spare: inout [UInt8]) {
    if isEventStream { parser.returnStorage(to: &spare) }
  }

  /// What the complete response amounts to; the body moves into it. Mutating, so that the
  /// reader, a stored property of the exchange, is not copied for the call (a retain and release
  /// of each of its five references) and the body is not shared with it.
  mutating func takeOutcome() -> VLLMOutcome {
    if isEventStream { return .streamEnded(cleanly: !parser.hasPartialEvent) }
    let body = self.body
    self.body = []
    if (200..<300).contains(status) {
      // vLLM sometimes answers HTTP 200 with an error object.
      if let error = VLLMError.fromErrorEvent(body) { return .failed(error) }
      return .body(body, contentType: contentType, receivedAt: lastReceivedAt)
    }
    return .failed(VLLMError.fromResponse(status: status, body: body))
  }
}
