import CNGHTTP2
import NIOCore

/// The defences of one connection against hostile or broken clients (see `ServerConfiguration`):
/// glitch and flood limits, keepalive enforcement, timeouts, and the bounds on what it buffers.
extension HTTP2ServerConnection {
  // MARK: Ending a misbehaving connection

  /// Sends GOAWAY with `errorCode` and `debugData`, cancels every call (their upstream requests
  /// stop) and closes. Inside nghttp2's input or output processing the work is finished by the
  /// code that called nghttp2, once it has returned.
  func terminate(_ errorCode: nghttp2_error_code, reason: String, debugData: String? = nil, isAbuse: Bool = true) {
    guard let session, !isTerminating else { return }
    isTerminating = true
    if isAbuse {
      logger.warning("closing connection", metadata: ["reason": "\(reason)", "open-calls": "\(calls.count)"])
    } else {
      logger.debug("closing connection", metadata: ["reason": "\(reason)"])
    }
    let debug = Array((debugData ?? reason).utf8)
    _ = nghttp2_submit_goaway(
      session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(session),
      errorCode.rawValue, debug, debug.count)
    if isFlushing {
      needsAnotherFlush = true
    } else if !isReading {
      flush()
    }
  }

  /// One glitch: a frame or stream the client got wrong. A burst is tolerated; a steady rate
  /// above the limit is an attack (MadeYouReset and its kin), and ends the connection.
  func glitch(_ what: @autoclosure () -> String) {
    guard !guards.glitches.take() else { return }
    terminate(
      NGHTTP2_ENHANCE_YOUR_CALM,
      reason: "too many glitches (the last: \(what())): over \(configuration.glitchBurst) at once or "
        + "\(configuration.glitchesPerSecond) per second")
  }

  // MARK: Frames the client sent or the server sent (from NGHTTP2Callbacks)

  func invalidFrameReceived(streamID: Int32, error: Int32) {
    guards.lastInvalidFrameStreamID = streamID
    glitch("invalid frame on stream \(streamID): \(String(cString: nghttp2_strerror(error)))")
  }

  /// nghttp2 did not send a stream's response headers or trailers (a header block past its
  /// 64 KiB, say) and leaves the stream open: the client would wait for them until its deadline,
  /// or for ever. The stream is reset instead (INTERNAL_ERROR), which gRPC clients report.
  func headersNotSent(streamID: Int32, error: Int32) {
    guard let session else { return }
    logger.warning(
      "response headers not sent; the stream is reset",
      metadata: ["stream": "\(streamID)", "error": "\(String(cString: nghttp2_strerror(error)))"])
    nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, NGHTTP2_INTERNAL_ERROR.rawValue)
  }

  func settingsReceived(isAck: Bool) {
    if isAck { guards.receivedSettingsAck = true } else { guards.receivedClientSettings = true }
  }

  func pingReceived() {
    guard !guards.pings.pingReceived(openCalls: calls.count) else { return }
    terminate(
      NGHTTP2_ENHANCE_YOUR_CALM, reason: "keepalive pings more often than every \(configuration.minimumPingInterval)",
      debugData: "too_many_pings")
  }

  /// After each read: PRIORITY frames are counted as they arrive (see FrameBoundaryTracker).
  func checkPriorityFrames() {
    guard guards.hasSentTooManyPriorityFrames(limitPerStream: configuration.maximumPriorityFramesPerStream) else {
      return
    }
    terminate(NGHTTP2_ENHANCE_YOUR_CALM, reason: "PRIORITY frame flood")
  }

  func windowUpdateReceived() {
    guard !guards.windowUpdateReceived(limitPerDataFrame: configuration.maximumWindowUpdatesPerDataFrame) else {
      return
    }
    terminate(NGHTTP2_ENHANCE_YOUR_CALM, reason: "WINDOW_UPDATE frame flood")
  }

  func emptyDataReceived(streamID: Int32) {
    glitch("empty DATA frame on stream \(streamID)")
  }

  func resetReceived(streamID: Int32) {
    guard let pointer = session.flatMap({ nghttp2_session_get_stream_user_data($0, streamID) }) else { return }
    let call = Unmanaged<ServerCall>.fromOpaque(pointer).takeUnretainedValue()
    if !call.remoteClosed { glitch("stream \(streamID) reset before its request ended") }
  }

  func dataSent() {
    guards.dataFramesSent += 1
    guards.pings.resetsStrikes = true
  }

  func headersSent() {
    guards.pings.resetsStrikes = true
  }

  func resetSent(streamID: Int32, errorCode: UInt32) {
    // NO_ERROR follows our own end of a stream; CANCEL is the server ending a stream itself.
    guard errorCode != NGHTTP2_NO_ERROR.rawValue, errorCode != NGHTTP2_CANCEL.rawValue,
      streamID != guards.lastInvalidFrameStreamID
    else { return }
    glitch("stream \(streamID) reset with error \(errorCode)")
  }

  // MARK: Timers

  /// One timer per connection watches every timeout, ticking at a quarter of the shortest.
  func scheduleHousekeeping() {
    guard let interval = guards.tickInterval else { return }
    housekeepingTimer = eventLoop.assumeIsolated().scheduleTask(in: interval) { self.housekeep() }
  }

  private func housekeep() {
    housekeepingTimer = nil
    guard let session, !isTerminating else { return }
    tick += 1
    let now = NIODeadline.now()
    if !guards.handshakeComplete, let timeout = configuration.handshakeTimeout, now - guards.startedAt >= timeout {
      terminate(
        guards.receivedClientSettings ? NGHTTP2_SETTINGS_TIMEOUT : NGHTTP2_PROTOCOL_ERROR,
        reason: guards.receivedClientSettings
          ? "SETTINGS not acknowledged within \(timeout)" : "no HTTP/2 preface and SETTINGS within \(timeout)")
      return
    }
    if let timeout = configuration.requestHeadersTimeout, let since = guards.requestHeadSinceTick,
      tick - since >= guards.ticks(timeout)
    {
      terminate(NGHTTP2_ENHANCE_YOUR_CALM, reason: "a request header block took longer than \(timeout)")
      return
    }
    if calls.isEmpty, let timeout = configuration.connectionIdleTimeout,
      tick - guards.idleSinceTick >= guards.ticks(timeout)
    {
      terminate(NGHTTP2_NO_ERROR, reason: "idle for \(timeout)", debugData: "idle timeout", isAbuse: false)
      return
    }
    if let timeout = configuration.streamIdleTimeout, !calls.isEmpty {
      let limit = guards.ticks(timeout)
      // Only calls held up by the client: their answer waits in the buffer, or they wait for room
      // in it. A call waiting on its own work (a long generation) is bounded by its deadline.
      for call in calls.all
      where (call.bufferedBytes > 0 || call.wasOverHighWatermark) && tick - call.activityTick >= limit {
        resetIdleStream(call, session: session, timeout: timeout)
      }
    }
    if let deadline = guards.ageDeadline, !isDraining, now >= deadline {
      logger.debug("maximum connection age reached; sending GOAWAY")
      beginGracefulShutdown(gracePeriod: configuration.maximumConnectionAgeGrace)
    }
    scheduleHousekeeping()
  }

  private func resetIdleStream(_ call: ServerCall, session: OpaquePointer, timeout: TimeAmount) {
    logger.info(
      "resetting a stream with nothing moving", metadata: ["path": "\(call.path)", "idle": "\(timeout)"])
    // Nothing would reach a client that does not read, trailers included: the stream ends here.
    call.activityTick = tick
    nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), call.streamID, NGHTTP2_CANCEL.rawValue)
    call.cancel(.streamIdle)
    scheduleFlush()
  }

  // MARK: Send buffers

  /// Whether the connection may buffer more for its client: under its own high watermark, and
  /// within the grants it holds of the server's budget.
  var hasSendBufferRoom: Bool {
    bufferedBytes < configuration.connectionSendBufferHighWatermark
      && bufferedBytes <= reservedGrants * SendBufferBudget.grant
  }

  /// A call queued `bytes` for its client.
  func queued(_ bytes: Int) {
    bufferedBytes += bytes
    while bufferedBytes > reservedGrants * SendBufferBudget.grant {
      guard sendBudget.reserveGrant() else { break }
      reservedGrants += 1
    }
  }

  /// nghttp2 took `bytes` of `call`'s queue: wake the calls waiting for room once there is some.
  func drained(_ bytes: Int, by call: ServerCall) {
    let wasFull = !hasRoomToWake
    bufferedBytes -= bytes
    releaseSpareGrants()
    guard !writableWaiters.isEmpty, hasRoomToWake else { return }
    // Waiters wake when the connection gets room back, or when this call itself has drained.
    if wasFull || (call.wasOverHighWatermark && call.bufferedBytes < configuration.callSendBufferHighWatermark / 2) {
      scheduleWakingWaiters()
    }
  }

  /// A stream is gone: what it still held is no longer buffered.
  func releaseBuffers(of call: ServerCall) {
    // Looking a key up hashes it even in an empty dictionary (about 120 instructions a call).
    if !writableWaiters.isEmpty { writableWaiters.removeValue(forKey: call.streamID) }
    let held = call.bufferedBytes
    guard held > 0 else { return }
    let wasFull = !hasRoomToWake
    bufferedBytes -= held
    call.discardOutbound()
    releaseSpareGrants()
    if wasFull && hasRoomToWake && !writableWaiters.isEmpty { scheduleWakingWaiters() }
  }

  /// `call` found itself not writable: it hears `onWritable` once there is room again.
  func waitForWritable(_ call: ServerCall) {
    writableWaiters[call.streamID] = call
  }

  /// Room with hysteresis: half the connection's watermark, so waking is not a byte-by-byte affair.
  private var hasRoomToWake: Bool {
    bufferedBytes < configuration.connectionSendBufferHighWatermark / 2 && hasSendBufferRoom
  }

  private func releaseSpareGrants() {
    var spare = 0
    while reservedGrants - spare > 0 && (reservedGrants - spare - 1) * SendBufferBudget.grant >= bufferedBytes {
      spare += 1
    }
    if spare > 0 {
      reservedGrants -= spare
      sendBudget.release(grants: spare)
    }
  }

  private func scheduleWakingWaiters() {
    guard !isWakeScheduled else { return }
    isWakeScheduled = true
    // The handlers may send at once; let them, after nghttp2 is done with the current callback.
    eventLoop.assumeIsolated().execute { self.wakeWaiters() }
  }

  private func wakeWaiters() {
    isWakeScheduled = false
    guard session != nil, hasRoomToWake else { return }
    let waiting = writableWaiters
    writableWaiters.removeAll(keepingCapacity: true)
    let callWatermark = configuration.callSendBufferHighWatermark
    for (streamID, call) in waiting {
      guard !call.isFinished else {
        call.wasOverHighWatermark = false
        continue
      }
      if call.bufferedBytes < callWatermark / 2 {
        call.wasOverHighWatermark = false
        call.onWritable?()
      } else {
        writableWaiters[streamID] = call
      }
    }
  }
}
