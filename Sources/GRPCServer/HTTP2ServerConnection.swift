import CNGHTTP2
import Logging
import NIOCore

/// One client connection: an nghttp2 server session and the calls on its streams. Everything here
/// runs on the connection's event loop. nghttp2 does framing, HPACK, flow control and stream
/// states; this class turns its callbacks into gRPC calls.
final class HTTP2ServerConnection {
  /// The common name of the client's TLS certificate (mTLS), once its first bytes arrived.
  var peerCommonName: String? = nil
  /// The service's own value for this connection (`ServerCall.connectionContext`).
  var serviceContext: AnyObject? = nil
  var peerChecked = false
  let configuration: ServerConfiguration
  /// gRPC-Web and Connect, when the server speaks them.
  let web: WebSupport?
  /// Whether the socket takes more output now; the channel handler keeps it current (a stored
  /// flag, read several times per flush, costs less than asking the channel through a protocol).
  var isOutputWritable = true
  let router: Router
  let eventLoop: any EventLoop
  var logger: Logger
  unowned let output: any ConnectionOutput

  // SAFETY of the C boundary: the nghttp2_session* this object owns; freed in `close()`.
  // (Internal rather than private: HTTP2ServerConnection+Defences.swift works on them too.)
  private(set) var session: OpaquePointer?
  // Touched only on this connection's event loop, one access at a time.
  @exclusivity(unchecked) private(set) var calls = OpenCalls()
  /// The request headers of the stream whose header block is arriving. HTTP/2 sends a header
  /// block whole, no other frame between its HEADERS and CONTINUATION frames, so a connection
  /// reads one at a time, and its calls need not each carry one (some 200 bytes) all along.
  @exclusivity(unchecked) private var requestHead = RequestHead()
  private var requestHeadStreamID: Int32 = 0
  /// The metadata values this connection's calls repeat, shared between them. Unchecked, as
  /// `requestHead`: passed inout for every header, its dynamic exclusivity check cost about 70
  /// instructions a header (callgrind), on a value touched only by this loop's header callback.
  @exclusivity(unchecked) private var repeatedHeaderValues = RepeatedHeaderValues()
  private(set) var isReading = false
  private(set) var isFlushing = false
  /// A session closed while a flush was using it: freed once that flush has unwound (a failed
  /// socket write closes the channel, and so this connection, from inside the flush).
  private var sessionAwaitingDelete: OpaquePointer? = nil
  var needsAnotherFlush = false
  private var isFlushScheduled = false
  private(set) var isDraining = false
  private var graceTimer: Scheduled<Void>? = nil
  private var finalGoAwayTimer: Scheduled<Void>? = nil

  // Send buffers: what all calls hold for the client, and the grants of the server's budget.
  let sendBudget: SendBufferBudget
  let admission: CallAdmission
  /// Calls of this connection holding a place of `admission`.
  var admittedCalls = 0
  /// The configuration's limit on `admittedCalls`, kept apart: read through the configuration,
  /// each call's admission copied the whole configuration (about 300 instructions, callgrind).
  let admittedCallsLimit: Int
  var bufferedBytes = 0
  var reservedGrants = 0
  /// Calls that found themselves not writable and wait for `onWritable`, by stream.
  var writableWaiters: [Int32: ServerCall] = [:]
  var isWakeScheduled = false
  /// Emptied response buffers, lent to the next call that sends: a call holds one only while it
  /// has bytes queued, so thousands of open streams waiting for tokens hold none, and a busy
  /// stream still never allocates one per message.
  var spareOutbound: [[UInt8]] = []
  static let maximumSpareOutbound = 16

  // Defences (see ServerConfiguration): what the client has done, and the timers that watch it.
  var guards: ConnectionGuards
  /// Set once the connection is being torn down for misbehaviour: input is ignored and no call
  /// starts; the next flush sends the GOAWAY and closes.
  var isTerminating = false
  /// Housekeeping ticks since the connection started; calls note the tick of their last activity.
  var tick = 0
  var housekeepingTimer: Scheduled<Void>? = nil

  init(
    configuration: ServerConfiguration, router: Router, eventLoop: any EventLoop, logger: Logger,
    output: any ConnectionOutput, sendBudget: SendBufferBudget, admission: CallAdmission
  ) {
    self.configuration = configuration
    self.admittedCallsLimit = configuration.maximumAdmittedCallsPerConnection
    self.web = configuration.web.map(WebSupport.init)
    self.router = router
    self.eventLoop = eventLoop
    self.logger = logger
    self.output = output
    self.sendBudget = sendBudget
    self.admission = admission
    self.guards = ConnectionGuards(configuration: configuration)
  }

  /// Creates the nghttp2 session and queues the server's SETTINGS.
  func start() {
    // SAFETY of the C boundary: nghttp2 keeps this unretained pointer as user_data; the session
    // is deleted in close() before this object can go away.
    let userData = Unmanaged.passUnretained(self).toOpaque()
    var option: OpaquePointer? = nil
    nghttp2_option_new(&option)
    defer { nghttp2_option_del(option) }
    nghttp2_option_set_stream_reset_rate_limit(
      option, configuration.streamResetBurst, configuration.streamResetRatePerSecond)
    nghttp2_option_set_max_continuations(option, configuration.maximumContinuations)
    nghttp2_option_set_max_settings(option, configuration.maximumSettingsEntries)
    nghttp2_option_set_max_outbound_ack(option, configuration.maximumOutboundAcks)
    // HTTP/2's rules for requests (pseudo-headers, field syntax, content-length) are checked by
    // HTTPRequestRules as the fields are read, for a little over half of what nghttp2's cost.
    nghttp2_option_set_no_http_messaging(option, 1)
    let callbacks = NGHTTP2Callbacks.make()
    defer { nghttp2_session_callbacks_del(callbacks) }
    var memory = NGHTTP2Memory.cached
    let status = nghttp2_session_server_new3(&session, callbacks, userData, option, &memory)
    precondition(status == 0, "nghttp2_session_server_new3 failed: \(status)")

    var settings = [
      nghttp2_settings_entry(
        settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue),
        value: UInt32(configuration.maximumConcurrentStreams)),
      nghttp2_settings_entry(
        settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue),
        value: UInt32(configuration.initialStreamWindowSize)),
      nghttp2_settings_entry(
        settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue),
        value: UInt32(configuration.maximumHeaderListSize)),
      // RFC 9218: the client's RFC 7540 priority signals are ignored (gRPC clients send none),
      // as nghttpx's frontend does. nghttp2 then keeps no dependency tree and no closed streams
      // for it: about 200 instructions less a unary call (callgrind, four streams in flight).
      nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES.rawValue), value: 1),
    ]
    nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
    nghttp2_session_set_local_window_size(
      session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Int32(configuration.connectionWindowSize))
    scheduleHousekeeping()
    flush()
  }

  // MARK: Input

  func beginReadBatch() { isReading = true }

  /// Feeds received bytes to nghttp2, which calls back into the stream handlers below.
  func receive(_ bytes: ByteBuffer) {
    guard let session, !isTerminating else { return }
    let consumed = bytes.withUnsafeReadableBytes { raw -> Int in
      guard let base = raw.baseAddress else { return 0 }
      guards.frames.consume(raw)
      return nghttp2_session_mem_recv(session, base.assumingMemoryBound(to: UInt8.self), raw.count)
    }
    guards.noteRequestHeadProgress(tick: tick)
    if !isTerminating { checkPriorityFrames() }
    if isTerminating {
      flush()
      return
    }
    if consumed < 0 {
      let reason = String(cString: nghttp2_strerror(Int32(consumed)))
      logger.info("closing connection after HTTP/2 error", metadata: ["error": "\(reason)"])
      // nghttp2 has queued a GOAWAY for protocol errors; send it, then close.
      flush()
      output.closeConnection()
    }
  }

  func endReadBatch() {
    isReading = false
    flush()
  }

  // MARK: Output

  /// Drains everything nghttp2 wants to send into one write.
  func flush() {
    guard let session else { return }
    if isFlushing {
      needsAnotherFlush = true
      return
    }
    isFlushing = true
    defer {
      isFlushing = false
      if let closed = sessionAwaitingDelete {
        sessionAwaitingDelete = nil
        nghttp2_session_del(closed)
      }
    }
    var buffer: ByteBuffer? = nil
    repeat {
      needsAnotherFlush = false
      while isOutputWritable {
        var chunk: UnsafePointer<UInt8>? = nil
        let length = nghttp2_session_mem_send(session, &chunk)
        if length < 0 {
          logger.info("closing connection: nghttp2 send failed", metadata: ["error": "\(length)"])
          output.closeConnection()
          return
        }
        guard length > 0, let chunk else { break }
        if buffer == nil { buffer = output.allocator.buffer(capacity: max(length, 4096)) }
        buffer!.writeBytes(UnsafeRawBufferPointer(start: chunk, count: length))
        // Hand large batches to the socket as they grow, so writability is checked in between.
        if buffer!.readableBytes >= 256 * 1024 {
          output.write(buffer!)
          buffer = nil
          guard self.session != nil else { return }  // the write failed and closed the connection
        }
      }
    } while needsAnotherFlush
    if let buffer { output.write(buffer) }
    guard self.session != nil else { return }  // the write failed and closed the connection
    if isTerminating {
      // The GOAWAY is in the write above; the calls' upstream requests stop now.
      cancelAllCalls(reason: .connectionClosed)
      output.closeConnection()
    } else if nghttp2_session_want_read(session) == 0 && nghttp2_session_want_write(session) == 0 {
      output.closeConnection()
    }
  }

  /// Flushes soon, coalescing the sends a handler makes in one turn of the event loop.
  func scheduleFlush() {
    if isFlushing {
      needsAnotherFlush = true
      return
    }
    guard !isReading, !isFlushScheduled, session != nil else { return }
    isFlushScheduled = true
    eventLoop.assumeIsolated().execute {
      self.isFlushScheduled = false
      self.flush()
    }
  }

  // MARK: Called by ServerCall

  func submitResponse(for call: ServerCall, block: inout HeaderBlock) {
    block.withNameValues { pairs, count in
      submitResponse(for: call, headers: UnsafeBufferPointer(start: pairs, count: count))
    }
  }

  /// Response HEADERS followed by a body that `readResponseData` supplies.
  func submitResponse(for call: ServerCall, headers: UnsafeBufferPointer<nghttp2_nv>) {
    guard let session else { return }
    var provider = nghttp2_data_provider()
    provider.read_callback = NGHTTP2Callbacks.readResponseData
    _ = nghttp2_submit_response(session, call.streamID, headers.baseAddress, headers.count, &provider)
    scheduleFlush()
  }

  func submitTrailersOnly(for call: ServerCall, block: inout HeaderBlock) {
    submitHeadersEndingStream(call.streamID, block: &block)
  }

  /// A call queued output. It goes at the end of the event loop's turn, with everything else
  /// queued meanwhile, unless `flushingNow` asks for it at once (and the connection is not in
  /// the middle of reading, whose end flushes anyway).
  func resumeData(for call: ServerCall, flushingNow: Bool = false) {
    guard let session else { return }
    if call.isDataDeferred {
      call.isDataDeferred = false
      nghttp2_session_resume_data(session, call.streamID)
    }
    if flushingNow && !isReading && !isFlushing {
      flush()
    } else {
      scheduleFlush()
    }
  }

  func submitHeadersEndingStream(_ streamID: Int32, block: inout HeaderBlock) {
    guard let session else { return }
    block.withNameValues { pairs, count in
      _ = nghttp2_submit_response(session, streamID, pairs, count, nil)
    }
    scheduleFlush()
  }

  // MARK: nghttp2 callbacks

  func beginHeaders(streamID: Int32) {
    let call = ServerCall(streamID: streamID, connection: self)
    call.activityTick = tick
    // A head taken by its call left an empty one behind (`takeRequestHead`), which serves as it
    // is: assigning a new one destroyed it, about 200 instructions a call for its empty
    // strings (callgrind). Only a head whose stream ended before it was complete is replaced.
    if requestHeadStreamID != 0 { requestHead = RequestHead() }
    requestHeadStreamID = streamID
    calls.add(call)
    // nghttp2 keeps a pointer to the call with its stream, so callbacks find it without a
    // dictionary lookup; `calls` holds the reference until the stream closes.
    nghttp2_session_set_stream_user_data(session, streamID, Unmanaged.passUnretained(call).toOpaque())
  }

  /// The call on a stream, found through nghttp2's stream user data.
  @inline(__always)
  private func call(_ streamID: Int32) -> ServerCall? {
    guard let session, let pointer = nghttp2_session_get_stream_user_data(session, streamID) else { return nil }
    return Unmanaged<ServerCall>.fromOpaque(pointer).takeUnretainedValue()
  }

  /// One field of a request's trailers (a HEADERS frame after its first).
  func trailer(streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
    guard !HTTPRequestRules.isValidTrailer(name: name, value: value), let call = call(streamID) else { return }
    resetMalformed(call, "a trailer field breaks HTTP/2's rules")
  }

  /// A request's trailers are complete; they must end the request.
  func trailersComplete(streamID: Int32, endsStream: Bool) {
    guard !endsStream, let call = call(streamID) else { return }
    resetMalformed(call, "trailers that do not end the stream")
  }

  /// The request broke HTTP/2's rules (RFC 9113 section 8.1.1): its stream is reset with
  /// PROTOCOL_ERROR, as nghttp2 did when it checked them, and a call under way is cancelled.
  /// The reset counts as a glitch when it is sent (`resetSent`).
  func resetMalformed(_ call: ServerCall, _ reason: String) {
    guard let session, !call.wasResetAsMalformed else { return }
    call.wasResetAsMalformed = true
    logger.debug(
      "malformed request; the stream is reset", metadata: ["stream": "\(call.streamID)", "reason": "\(reason)"])
    call.cancel(.protocolViolation)
    nghttp2_submit_rst_stream(
      session, UInt8(NGHTTP2_FLAG_NONE.rawValue), call.streamID, NGHTTP2_PROTOCOL_ERROR.rawValue)
  }

  func header(streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
    guard streamID == requestHeadStreamID else { return }
    requestHead.add(
      name: name, value: value, limit: configuration.maximumHeaderListSize, router: router,
      repeatedValues: &repeatedHeaderValues)
  }

  /// Moves the gathered request head of `streamID` out, leaving an empty one: no field is copied.
  private func takeRequestHead(of streamID: Int32) -> RequestHead {
    var taken = RequestHead()
    guard streamID == requestHeadStreamID else { return taken }
    requestHeadStreamID = 0
    swap(&taken, &requestHead)
    return taken
  }

  /// The request HEADERS are complete: check them and start the call. `endsStream`: they are
  /// the whole request.
  func requestHeadersComplete(streamID: Int32, endsStream: Bool) {
    guard !isTerminating, let call = call(streamID), !call.isFinished else { return }
    guards.streamsOpened += 1
    // Read where the head is kept: a copy of the head to read them and consume it after
    // retained and released each of its strings.
    let rules = streamID == requestHeadStreamID ? requestHead.rules : HTTPRequestRules()
    guard rules.isComplete, !endsStream || rules.contentLength <= 0 else {
      resetMalformed(
        call,
        rules.isMalformed ? "a header field breaks HTTP/2's rules" : "a required pseudo-header is missing or wrong")
      _ = takeRequestHead(of: streamID)
      return
    }
    call.declaredContentLength = rules.contentLength
    switch takeRequestHead(of: streamID).verdict(router: router, web: web) {
    case .reject(let httpStatus, let status, let headers):
      logger.debug("rejected request", metadata: ["stream": "\(streamID)", "status": "\(status)"])
      call.markRejected(status)
      var block = HeaderBlock()
      block.add(":status", String(httpStatus))
      block.add("content-type", "application/grpc")
      for (name, value) in headers { block.add(name, value) }
      block.addStatus(status)
      submitHeadersEndingStream(streamID, block: &block)
    case .rejectWeb(let request, let status):
      logger.debug("rejected request", metadata: ["stream": "\(streamID)", "status": "\(status)"])
      call.rejectWeb(request, status: status)
    case .preflight(let origin, let requestedHeaders):
      answerPreflight(call, origin: origin, requestedHeaders: requestedHeaders)
    case .accept(let accepted):
      call.accept(accepted)
      if let deadline = call.deadline {
        // Strong captures: the timer is cancelled when the call ends, and a weak reference would
        // move every retain of the call to the runtime's slow path.
        call.deadlineTimer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
          guard !call.isFinished else { return }
          self.logger.debug("call cancelled", metadata: ["path": "\(call.path)", "reason": "deadline exceeded"])
          call.abort(Status(.deadlineExceeded, "deadline exceeded"), reason: .deadlineExceeded)
        }
      }
      call.start(accepted.route.kind)
    }
  }

  func data(streamID: Int32, bytes: UnsafeRawBufferPointer) {
    guard let call = call(streamID) else { return }
    if call.declaredContentLength >= 0 {
      call.receivedContentLength += bytes.count
      if call.receivedContentLength > call.declaredContentLength {
        resetMalformed(call, "DATA beyond the request's content-length")
        return
      }
    }
    guard !call.isFinished else { return }
    call.activityTick = tick
    if call.wire != .grpc {
      receiveWebBody(bytes, for: call)
    } else {
      feed(bytes, to: call)
    }
  }

  /// Request body bytes into the call's deframer, which hands on each whole message.
  @inline(__always)
  func feed(_ bytes: UnsafeRawBufferPointer, to call: ServerCall) {
    do {
      try call.deframer.feed(bytes) { frame in deliver(frame, to: call) }
    } catch {
      switch error {
      case .tooLarge(let length, let limit):
        call.abort(
          Status(.resourceExhausted, "request message of \(length) bytes exceeds the limit of \(limit) bytes"),
          reason: .protocolViolation)
      case .invalidFlag(let flag):
        call.abort(Status(.internal, "invalid message compression flag \(flag)"), reason: .protocolViolation)
      }
    }
  }

  func deliver(_ frame: MessageDeframer.Frame, to call: ServerCall) {
    guard !call.isFinished else { return }
    call.lastMessageWasCompressed = frame.isCompressed
    guard frame.isCompressed else {
      if call.wire.isJSON {
        receiveJSON(frame.bytes, for: call)
      } else {
        call.receive(frame.bytes)
      }
      return
    }
    guard call.requestEncoding != .identity else {
      call.abort(
        Status(.internal, "received a compressed message but the request's grpc-encoding is identity"),
        reason: .protocolViolation)
      return
    }
    do {
      let limit = configuration.maximumReceiveMessageSize
      let message = try frame.bytes.withUnsafeBytes { bytes throws(Zlib.Failure) in
        try Zlib.decompress(bytes, limit: limit)
      }
      if call.wire.isJSON {
        receiveJSON(message, for: call)
      } else {
        call.receive(message)
      }
    } catch let error as Zlib.Failure {
      switch error {
      case .tooLarge(let limit):
        call.abort(
          Status(.resourceExhausted, "decompressed request message exceeds the limit of \(limit) bytes"),
          reason: .protocolViolation)
      case .corrupt(let reason):
        call.abort(
          Status(.internal, "could not decompress \(call.requestEncoding.rawValue) message: \(reason)"),
          reason: .protocolViolation)
      }
    } catch {
      call.abort(Status(.internal, "could not decompress message: \(error)"), reason: .protocolViolation)
    }
  }

  func endOfRequest(streamID: Int32) {
    guard let call = call(streamID) else { return }
    call.remoteClosed = true
    if call.declaredContentLength >= 0 && call.receivedContentLength != call.declaredContentLength {
      resetMalformed(call, "the request ended short of its content-length")
      return
    }
    guard !call.isFinished else { return }
    if call.wire != .grpc && !finishWebBody(of: call) { return }
    if call.deframer.hasPartialMessage {
      call.abort(Status(.internal, "request ended in the middle of a message"), reason: .protocolViolation)
    } else {
      call.receiveEnd()
    }
  }

  func streamClosed(streamID: Int32) {
    guard let call = call(streamID), calls.remove(call) else { return }
    if calls.isEmpty { guards.idleSinceTick = tick }
    releaseBuffers(of: call)
    if !call.isFinished {
      logger.debug("call cancelled", metadata: ["path": "\(call.path)", "reason": "client reset"])
      call.cancel(.clientReset)
    }
    // A status the client was never sent counts as what it got: a cancelled call.
    call.countEnd(delivered: false)
  }

  /// Our END_STREAM left: the client has the call's status. Tell a client still sending to stop
  /// (RST_STREAM NO_ERROR), as gRPC servers do.
  func sentEndOfStream(streamID: Int32) {
    guard let session else { return }
    call(streamID)?.countEnd(delivered: true)
    guard nghttp2_session_get_stream_remote_close(session, streamID) == 0 else { return }
    nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, NGHTTP2_NO_ERROR.rawValue)
  }

  /// nghttp2 asks for up to `capacity` bytes of the response body.
  func readResponseData(
    streamID: Int32, into destination: UnsafeMutablePointer<UInt8>, capacity: Int,
    flags: UnsafeMutablePointer<UInt32>
  ) -> Int {
    guard let session, let call = call(streamID) else {
      return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
    }
    let available = call.bufferedBytes
    var copied = 0
    if available > 0 {
      // Taken now, the bytes reach the socket at the end of this flush.
      if configuration.statistics != nil { call.messageLeaving(at: NIODeadline.now().uptimeNanoseconds) }
      copied = min(available, capacity)
      call.outbound.withUnsafeBytes { source in
        UnsafeMutableRawPointer(destination).copyMemory(
          from: source.baseAddress! + call.outboundReadIndex, byteCount: copied)
      }
      call.outboundReadIndex += copied
      call.activityTick = tick
      if call.outboundReadIndex == call.outbound.count {
        call.outboundReadIndex = 0
        if call.outbound.count <= 64 * 1024 && spareOutbound.count < Self.maximumSpareOutbound {
          call.outbound.removeAll(keepingCapacity: true)
          spareOutbound.append(call.outbound)
        }
        call.outbound = []
      }
      drained(copied, by: call)
    }
    guard call.bufferedBytes == 0 else { return copied }
    if let trailers = call.pendingTrailers {
      call.pendingTrailers = nil
      flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue | NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
      switch trailers {
      case .ok:
        _ = nghttp2_submit_trailer(
          session, streamID, StaticHeaders.okTrailers.baseAddress, StaticHeaders.okTrailers.count)
      case .custom(var block):
        block.withNameValues { pairs, count in
          _ = nghttp2_submit_trailer(session, streamID, pairs, count)
        }
      case .endOfBody:
        flags.pointee &= ~NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
      }
      return copied
    }
    if copied > 0 { return copied }
    call.isDataDeferred = true
    return Int(NGHTTP2_ERR_DEFERRED.rawValue)
  }

  // MARK: Lifecycle

  /// Starts a graceful shutdown: GOAWAY now, in-flight calls may finish within the grace period.
  func beginGracefulShutdown(gracePeriod: TimeAmount? = nil) {
    guard let session, !isDraining, !isTerminating else { return }
    isDraining = true
    // A shutdown notice first, then the real GOAWAY once requests already in flight have landed:
    // the two-step close RFC 9113 recommends.
    nghttp2_submit_shutdown_notice(session)
    flush()
    finalGoAwayTimer = eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(200)) {
      guard let session = self.session else { return }
      nghttp2_submit_goaway(
        session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(session),
        NGHTTP2_NO_ERROR.rawValue, nil, 0)
      self.flush()
    }
    graceTimer = eventLoop.assumeIsolated().scheduleTask(in: gracePeriod ?? configuration.shutdownGracePeriod) {
      self.logger.info("grace period over; closing connection with calls still open")
      self.output.closeConnection()
    }
  }

  /// The connection is gone: cancel every call and free the session.
  func close() {
    graceTimer?.cancel()
    graceTimer = nil
    finalGoAwayTimer?.cancel()
    finalGoAwayTimer = nil
    housekeepingTimer?.cancel()
    housekeepingTimer = nil
    let open = calls.removeAll()
    writableWaiters.removeAll()
    for call in open {
      if !call.isFinished {
        logger.debug("call cancelled", metadata: ["path": "\(call.path)", "reason": "connection closed"])
        call.cancel(.connectionClosed)
      }
      call.countEnd(delivered: false)
    }
    bufferedBytes = 0
    sendBudget.release(grants: reservedGrants)
    reservedGrants = 0
    if let session {
      if isFlushing {
        sessionAwaitingDelete = session
      } else {
        nghttp2_session_del(session)
      }
      self.session = nil
    }
  }

  /// Cancels every unfinished call at once (their upstream requests stop), keeping the streams
  /// until the connection closes.
  private func cancelAllCalls(reason: CancellationReason) {
    for call in calls.all where !call.isFinished { call.cancel(reason) }
  }

  var openCallCount: Int { calls.count }
}
