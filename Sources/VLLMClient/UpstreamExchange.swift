import NIOCore

/// One request to vLLM on one pooled HTTP/1.1 connection, on the connection's event loop: the
/// request is written, the response is read only as fast as the handler takes it, and the
/// connection goes back to its loop's pool when the response ended cleanly.
final class UpstreamExchange: LoopBoundCallControl {
  private var handler: (any VLLMResponseHandler)?
  private let pool: LoopConnectionPool
  private var connection: UpstreamConnection? = nil
  /// The deadline's timer, when there is a deadline. The stall timeout, counted from the latest
  /// sign of life, is the loop's StallWatch's to check, so a read costs no timer work.
  private var deadlineTimer: Scheduled<Void>? = nil
  /// This exchange's place in its loop's StallWatch, while it is watched.
  var stallWatchSlot: Int? = nil
  /// When the request went out or the handler last took events again (monotonic nanoseconds):
  /// with `lastReadAt`, the latest moment vLLM was not the one keeping the exchange waiting.
  private var lastProgressAt: UInt64 = 0
  private var keepAlive = true
  private var reader: UpstreamResponseReader
  private(set) var isFinished = false
  private var isPaused = false
  private var request: ByteBuffer? = nil
  private var attempts = 0
  /// Whether the current connection came from the pool, having served an earlier request.
  private var connectionWasReused = false
  /// When the connection's latest read arrived (monotonic nanoseconds).
  var lastReadAt: UInt64 = 0

  init(handler: any VLLMResponseHandler, maximumBodySize: Int, pool: LoopConnectionPool) {
    self.handler = handler
    self.pool = pool
    self.reader = UpstreamResponseReader(maximumBodySize: maximumBodySize)
  }

  /// Sends `request`, a whole HTTP/1.1 request from `HTTP1Request`.
  func start(request: ByteBuffer, deadline: NIODeadline?) {
    if let deadline {
      // Strong capture: the timer is cancelled (and released) when the exchange finishes; a weak
      // reference would slow every retain of the exchange.
      deadlineTimer = pool.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
        self.deadlineTimer = nil
        self.fail(VLLMError(kind: .timeout, httpStatus: 504, message: "vLLM did not answer before the deadline"))
      }
    }
    pool.stallWatch?.add(self)
    self.request = request
    send()
  }

  /// Whether vLLM has kept this exchange waiting for `limit` nanoseconds by `now`. While the
  /// handler holds the response back, vLLM is not the one keeping it waiting: the stall clock
  /// starts again.
  func hasStalled(at now: UInt64, limit: UInt64) -> Bool {
    guard !isFinished else { return false }
    if isPaused {
      lastProgressAt = now
      return false
    }
    return now >= max(lastReadAt, lastProgressAt) &+ limit
  }

  private func send() {
    guard let request else { return }
    attempts += 1
    if let connection = pool.idleConnection() {
      send(request, on: connection, isReused: true)
      return
    }
    // Connecting counts as progress; vLLM keeps the exchange waiting only once it has the request.
    lastProgressAt = NIODeadline.now().uptimeNanoseconds
    pool.connect { result in
      switch result {
      case .success(let connection):
        guard !self.isFinished else {
          self.pool.release(connection)
          return
        }
        self.send(request, on: connection, isReused: false)
      case .failure(let error):
        self.fail(VLLMError(kind: .connectionFailed, httpStatus: 503, message: "cannot reach vLLM: \(error)"))
      }
    }
  }

  private func send(_ request: ByteBuffer, on connection: UpstreamConnection, isReused: Bool) {
    self.connection = connection
    connectionWasReused = isReused
    connection.exchange = self
    // The handover to the kernel: what the write system call then costs (on loopback it runs the
    // receiver's side too, and may switch to it) is not the gateway's own time. One clock read
    // for that and for the stall clock's start.
    let handedOverAt = NIODeadline.now().uptimeNanoseconds
    lastProgressAt = handedOverAt
    connection.send(request)
    // Kept only while it may have to go again (see connectionClosed): a long stream would
    // otherwise hold its request's kilobyte all along.
    if !isReused { giveBackRequest() }
    handler?.vllmRequestSent(at: handedOverAt)
  }

  /// The request will not go again: its buffer is the loop's for another request.
  private func giveBackRequest() {
    if let request = request.take() { pool.spareRequestBuffers.keep(request) }
  }

  // MARK: From the connection

  /// An event of the response, parsed from `buffer` (where a body's bytes are).
  func received(_ event: HTTP1ResponseParser.Event, in buffer: ByteBuffer) {
    guard !isFinished, let handler else { return }
    switch event {
    case .head(let status, let contentType, let keepAlive):
      giveBackRequest()
      self.keepAlive = keepAlive
      reader.head(status: status, contentType: contentType)
    case .body(let range):
      readBody(range, in: buffer, handler: handler, offering: true)
    case .wholeChunk(let range):
      // vLLM's usual chunk, one whole event: offered where it lies without parsing it as an event
      // stream (see ServerSentEventParser.wholeEventValue), at about 300 instructions less a
      // chunk. Declined, it is parsed as any body piece, without being offered again.
      // Unsafe buffer: the chunk's bytes are read where they lie in the socket's buffer, within
      // this call.
      let offered = buffer.withVeryUnsafeBytes { storage -> Bool? in
        guard let value = reader.wholeEventValue(UnsafeRawBufferPointer(rebasing: storage[range])) else { return nil }
        // Unsafe: a Span over the read's bytes, which outlive the call it is lent to.
        return handler.vllmEvent(borrowing: Span(_unsafeBytes: value), receivedAt: lastReadAt)
      }
      guard let offered else {
        readBody(range, in: buffer, handler: handler, offering: true)
        return
      }
      guard offered else {
        readBody(range, in: buffer, handler: handler, offering: false)
        return
      }
      // As `readBody` ends: that tail shared through one function cost about 30 instructions a
      // chunk more (callgrind), for this one line.
      if !isFinished && !handler.vllmWantsMore { isPaused = true }
    case .end:
      responseEnded()
    }
  }

  /// A piece of the body at `range` in `buffer`: its events go to the handler, whole ones first
  /// offered borrowed when `offering`.
  private func readBody(
    _ range: Range<Int>, in buffer: ByteBuffer, handler: any VLLMResponseHandler, offering: Bool
  ) {
    // The handler may cancel or fail the exchange from an event, which touches other state
    // than the reader, so the reader is parsed in place. Event data is gathered in storage the
    // loop's streams share (see ServerSentEventParser.borrowStorage).
    reader.borrowEventStorage(from: &pool.spareEventData)
    // Unsafe buffer: the body's bytes are read where they lie in the socket's buffer, within
    // this call (the parser has moved the reader index past them).
    let failure = buffer.withVeryUnsafeBytes { storage in
      reader.bodyPart(
        raw: UnsafeRawBufferPointer(rebasing: storage[range]), receivedAt: lastReadAt,
        // An event after the exchange finished is taken, and dropped.
        onBorrowedEvent: { data, receivedAt in
          offering && (isFinished || handler.vllmEvent(borrowing: data, receivedAt: receivedAt))
        }
      ) { event in
        if !isFinished { handler.vllmEvent(event) }
      }
    }
    reader.returnEventStorage(to: &pool.spareEventData)
    if let failure {
      fail(failure)
      return
    }
    if !isFinished && !handler.vllmWantsMore { isPaused = true }
  }

  /// The response is complete: the connection goes back to the pool (or closes) and the
  /// handler gets the outcome.
  func responseEnded() {
    guard !isFinished else { return }
    let connection = self.connection
    self.connection = nil
    connection?.exchange = nil
    if let connection {
      if keepAlive { pool.release(connection) } else { connection.close() }
    }
    finish(reader.takeOutcome())
  }

  /// Whether the connection should read more now.
  var wantsRead: Bool { !isFinished && !isPaused }

  /// The connection closed before the response ended; `byReset` if the server reset it.
  func connectionClosed(byReset: Bool) {
    connection = nil
    // A kept-alive connection the server reset before answering anything: it had closed what it
    // saw as an idle connection as the request went out (or closed it with the request unread),
    // so it cannot have processed the request, which goes again on a fresh connection, once. A
    // clean close may come from a server that read the request and died, and on a fresh
    // connection the server had no idle connection to close: then the request may have reached
    // vLLM, and a generation is never started twice.
    if byReset && lastReadAt == 0 && attempts == 1 && connectionWasReused && !isFinished {
      send()
      return
    }
    fail(VLLMError(kind: .malformed, httpStatus: 502, message: "vLLM closed the connection before the response ended"))
  }

  // MARK: From the caller

  func resume() {
    guard isPaused, !isFinished else { return }
    isPaused = false
    lastProgressAt = NIODeadline.now().uptimeNanoseconds
    connection?.read()
  }

  /// Closes the upstream connection: vLLM aborts the request when it goes.
  func cancel() {
    guard !isFinished else { return }
    handler = nil
    finish(nil)
  }

  func fail(_ error: VLLMError) {
    finish(.failed(error))
  }

  private func finish(_ outcome: VLLMOutcome?) {
    guard !isFinished else { return }
    isFinished = true
    deadlineTimer?.cancel()
    deadlineTimer = nil
    pool.stallWatch?.remove(self)
    if let connection {
      self.connection = nil
      connection.exchange = nil
      connection.close()
    }
    let handler = self.handler
    self.handler = nil
    if let outcome { handler?.vllmFinished(outcome) }
  }
}
