import NIOCore

/// One request to vLLM on one pooled HTTP/1.1 connection, on the connection's event loop: the
/// request is written, the response is read only as fast as the handler takes it, and the
/// connection goes back to its loop's pool when the response ended cleanly.
final class UpstreamExchange {
  private var handler: (any VLLMResponseHandler)?
  private let pool: LoopConnectionPool
  private var connection: UpstreamConnection? = nil
  private var deadlineTimer: Scheduled<Void>? = nil
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
        self.fail(VLLMError(kind: .timeout, httpStatus: 504, message: "vLLM did not answer before the deadline"))
      }
    }
    self.request = request
    send()
  }

  private func send() {
    guard let request else { return }
    attempts += 1
    pool.connection { result in
      switch result {
      case .success((let connection, let isReused)):
        guard !self.isFinished else {
          self.pool.release(connection)
          return
        }
        self.connection = connection
        self.connectionWasReused = isReused
        connection.exchange = self
        // The handover to the kernel: what the write system call then costs (on loopback it
        // runs the receiver's side too, and may switch to it) is not the gateway's own time.
        let handedOverAt = NIODeadline.now().uptimeNanoseconds
        connection.send(request)
        self.handler?.vllmRequestSent(at: handedOverAt)
      case .failure(let error):
        self.fail(VLLMError(kind: .connectionFailed, httpStatus: 503, message: "cannot reach vLLM: \(error)"))
      }
    }
  }

  // MARK: From the connection

  func received(_ event: HTTP1ResponseParser.Event) {
    guard !isFinished, let handler else { return }
    switch event {
    case .head(let status, let contentType, let keepAlive):
      self.keepAlive = keepAlive
      reader.head(status: status, contentType: contentType)
    case .body(let buffer):
      // The handler may cancel or fail the exchange from an event, which touches other state
      // than the reader, so the reader is parsed in place.
      let failure = reader.bodyPart(buffer, receivedAt: lastReadAt) { event in
        if !isFinished { handler.vllmEvent(event) }
      }
      if let failure {
        fail(failure)
        return
      }
      if !isFinished && !handler.vllmWantsMore { isPaused = true }
    case .end:
      let connection = self.connection
      self.connection = nil
      connection?.exchange = nil
      if let connection {
        if keepAlive { pool.release(connection) } else { connection.close() }
      }
      finish(reader.outcome())
    }
  }

  /// Whether the connection should read more now.
  var wantsRead: Bool { !isFinished && !isPaused }

  func connectionClosed() {
    connection = nil
    // A kept-alive connection that the server closed as the request went out: it closed what it
    // saw as an idle connection, so it cannot have processed the request, which goes again on a
    // fresh connection, once. On a fresh connection the request may have reached vLLM, and a
    // generation is never started twice.
    if reader.status == 0 && attempts == 1 && connectionWasReused && !isFinished {
      send()
      return
    }
    fail(VLLMError(kind: .malformed, httpStatus: 502, message: "vLLM closed the connection before the response ended"))
  }

  // MARK: From the caller

  func resume() {
    guard isPaused, !isFinished else { return }
    isPaused = false
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
