import CNGHTTP2
import GRPCServer
import NIOCore

/// One HTTP/2 connection of the probe: an nghttp2 client session whose stream slots each submit
/// a request on the ramp's schedule, and another whenever the run wants one after a stream ends.
/// It times the stamps in every response. Everything here runs on the probe's one event loop.
final class HTTP2ProbeConnection: ChannelInboundHandler {
  typealias InboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  /// The receive window, connection and stream: large enough that flow control never waits.
  private static let window: Int32 = 16 << 20

  private let run: ProbeRun
  /// This connection's place among the run's connections, for the ramp's schedule.
  private let index: Int
  private let body: [UInt8]
  // SAFETY of the C boundary: the nghttp2_session* this object owns; deleted in handlerRemoved.
  private var session: OpaquePointer? = nil
  private var headers = HeaderBlock()
  private var streams: [Int32: Stream] = [:]
  /// Slots waiting for their first stream's time on the ramp.
  private var firstStarts: [Scheduled<Void>] = []
  /// Slots whose stream ended inside nghttp2 and that start another once it has returned.
  private var restarts = 0
  private var liveSlots: Int
  /// Streams whose request ended in the output being gathered; timed when it is written.
  private var justSent: [Int32] = []
  /// When the bytes being fed to nghttp2 were read.
  private var receivedAt: Int64 = 0
  private var isReceiving = false
  private var context: ChannelHandlerContext? = nil

  private struct Stream {
    var timing: StreamTiming
    var bodyOffset = 0
    var status: Int? = nil
    var grpcStatus: Int? = nil
    var endedByServer = false
  }

  init(run: ProbeRun, index: Int, body: [UInt8]) {
    self.run = run
    self.index = index
    self.body = body
    self.liveSlots = run.plan.streamsPerConnection
  }

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
    if context.channel.isActive { start() }
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    nghttp2_session_del(session)
    session = nil
    self.context = nil
  }

  func channelActive(context: ChannelHandlerContext) {
    start()
    context.fireChannelActive()
  }

  func channelInactive(context: ChannelHandlerContext) {
    for timer in firstStarts { timer.cancel() }
    firstStarts = []
    for stream in streams.values { _ = run.streamEnded(stream.timing, success: false) }
    streams = [:]
    for _ in 0..<liveSlots { run.slotRetired() }
    liveSlots = 0
    context.fireChannelInactive()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    context.close(promise: nil)
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    receivedAt = MonotonicClock.now()
    guard let session else { return }
    isReceiving = true
    let consumed = unwrapInboundIn(data).withUnsafeReadableBytes { raw -> Int in
      guard let base = raw.baseAddress else { return 0 }
      return nghttp2_session_mem_recv(session, base.assumingMemoryBound(to: UInt8.self), raw.count)
    }
    isReceiving = false
    if consumed < 0 { context.close(promise: nil) }
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    restartAndFlush()
    context.fireChannelReadComplete()
  }

  // MARK: Session

  /// Creates the client session, then starts each slot's first stream on the ramp's schedule.
  private func start() {
    guard session == nil, let context else { return }
    // SAFETY of the C boundary: nghttp2 keeps this unretained pointer as user_data; the session
    // is deleted in handlerRemoved, before this handler can go away.
    let userData = Unmanaged.passUnretained(self).toOpaque()
    let callbacks = NGHTTP2ClientCallbacks.make()
    defer { nghttp2_session_callbacks_del(callbacks) }
    let status = nghttp2_session_client_new(&session, callbacks, userData)
    precondition(status == 0, "nghttp2_session_client_new failed: \(status)")
    var settings = [
      nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0),
      nghttp2_settings_entry(
        settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: UInt32(Self.window)),
    ]
    nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
    nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Self.window)

    let plan = run.plan
    headers.add(":method", "POST")
    headers.add(":scheme", "http")
    headers.add(":authority", plan.authority)
    headers.add(":path", plan.path)
    for header in plan.headers { headers.add(header.name.lowercased(), header.value) }
    if !plan.grpc { headers.add("content-length", String(body.count)) }

    // Slot s of connection c is slot s × connections + c of the run: each connection's slots
    // are spread over the whole ramp.
    for slot in 0..<plan.streamsPerConnection {
      let delay = run.delayBeforeFirstStream(ofSlot: slot * plan.connections + index)
      guard delay > .zero else {
        submitRequest()
        continue
      }
      firstStarts.append(
        context.eventLoop.assumeIsolated().scheduleTask(in: delay) {
          self.submitRequest()
          self.flush()
        })
    }
    flush()
  }

  private func submitRequest() {
    guard let session else { return }
    var provider = nghttp2_data_provider()
    provider.read_callback = NGHTTP2ClientCallbacks.readRequestBody
    let streamID = headers.withNameValues { pairs, count in
      nghttp2_submit_request(session, nil, pairs, count, &provider, nil)
    }
    if streamID > 0 {
      streams[streamID] = Stream(timing: run.streamStarting())
    } else {
      run.streamFailedToStart()
      retireSlot()
    }
  }

  /// Starts the streams of slots whose last one ended, sends, and closes once every slot retired.
  private func restartAndFlush() {
    while restarts > 0 {
      restarts -= 1
      submitRequest()
    }
    flush()
    if liveSlots == 0, let context, context.channel.isActive { context.close(promise: nil) }
  }

  private func retireSlot() {
    liveSlots -= 1
    run.slotRetired()
  }

  /// Writes everything nghttp2 has to send; requests that ended in it are timed just before.
  private func flush() {
    guard let session, let context, !isReceiving else { return }
    var buffer = context.channel.allocator.buffer(capacity: 0)
    while true {
      var chunk: UnsafePointer<UInt8>? = nil
      let length = nghttp2_session_mem_send(session, &chunk)
      guard length > 0, let chunk else {
        if length < 0 { context.close(promise: nil) }
        break
      }
      buffer.writeBytes(UnsafeRawBufferPointer(start: chunk, count: length))
    }
    if buffer.readableBytes > 0 {
      let now = MonotonicClock.now()
      for streamID in justSent { streams[streamID]?.timing.sentAt = now }
      justSent.removeAll()
      context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }
    // A stream nghttp2 closed while sending (a reset): its slot's next one starts after this turn.
    if restarts > 0 { context.eventLoop.assumeIsolated().execute { self.restartAndFlush() } }
  }

  // MARK: nghttp2 callbacks

  func header(streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
    if name.elementsEqual(":status".utf8) {
      streams[streamID]?.status = Int(String(decoding: value, as: UTF8.self))
    } else if name.elementsEqual("grpc-status".utf8) {
      streams[streamID]?.grpcStatus = Int(String(decoding: value, as: UTF8.self))
    }
  }

  func data(streamID: Int32, bytes: UnsafeRawBufferPointer) {
    guard streams[streamID] != nil else { return }
    run.recorder.receive(bytes, on: &streams[streamID]!.timing, at: receivedAt)
  }

  func endOfResponse(streamID: Int32) {
    streams[streamID]?.endedByServer = true
  }

  func sentEndOfRequest(streamID: Int32) {
    justSent.append(streamID)
  }

  func streamClosed(streamID: Int32, errorCode: UInt32) {
    guard let stream = streams.removeValue(forKey: streamID) else { return }
    let clean = errorCode == NGHTTP2_NO_ERROR.rawValue && stream.endedByServer
    let success = clean && (run.plan.grpc ? stream.grpcStatus == 0 : stream.status == 200)
    // nghttp2 is calling: a new request waits until it has returned.
    if run.streamEnded(stream.timing, success: success) { restarts += 1 } else { retireSlot() }
  }

  func readRequestBody(
    streamID: Int32, into buffer: UnsafeMutablePointer<UInt8>, capacity: Int, flags: UnsafeMutablePointer<UInt32>
  ) -> Int {
    guard let offset = streams[streamID]?.bodyOffset else {
      return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
    }
    let count = min(capacity, body.count - offset)
    if count > 0 {
      body.withUnsafeBytes { bytes in
        // SAFETY of the C boundary: nghttp2 gives `capacity` writable bytes at `buffer`.
        UnsafeMutableRawPointer(buffer).copyMemory(from: bytes.baseAddress! + offset, byteCount: count)
      }
    }
    streams[streamID]!.bodyOffset = offset + count
    if offset + count == body.count { flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue }
    return count
  }
}
