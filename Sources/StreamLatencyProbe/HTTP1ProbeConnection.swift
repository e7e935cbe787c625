import NIOCore

/// One stream slot over its own HTTP/1.1 connection: writes a request on the ramp's schedule,
/// times the stamps in the response, and once the event stream's `data: [DONE]` came either
/// closes, or waits for the end of the chunked body and sends the next request (keep-alive).
final class HTTP1ProbeConnection: ChannelInboundHandler {
  typealias InboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  private static let done = Array("data: [DONE]".utf8)
  /// The last chunk of a chunked body; SSE data holds no CR, so it cannot come earlier.
  private static let lastChunk = Array("\r\n0\r\n\r\n".utf8)
  private static let statusOK = Array("HTTP/1.1 200 ".utf8)

  private let run: ProbeRun
  /// This connection's place among the run's connections, for the ramp's schedule.
  private let index: Int
  private let request: [UInt8]
  private var response: Response? = nil
  private var firstStart: Scheduled<Void>? = nil
  private var isLive = true

  /// What is known of the response being received.
  private struct Response {
    var timing: StreamTiming
    /// Its first bytes, until there are enough to read the status line's code.
    var head: [UInt8] = []
    var isOK = false
    /// The last bytes received, so a pattern split across reads is still seen.
    var tail: [UInt8] = []
    var sawDone = false
    var sawLastChunk = false
    /// Whether the stream's end was reported to the run (which then said whether to go on).
    var hasEnded = false
  }

  /// The whole request: a POST with a Content-Length.
  static func request(for plan: ProbePlan) -> [UInt8] {
    var text = "POST \(plan.path) HTTP/1.1\r\nhost: \(plan.authority)\r\n"
    for header in plan.headers { text += "\(header.name): \(header.value)\r\n" }
    text += "content-length: \(plan.body.count)\r\n\r\n"
    return Array(text.utf8) + plan.body
  }

  init(run: ProbeRun, index: Int, request: [UInt8]) {
    self.run = run
    self.index = index
    self.request = request
  }

  func channelActive(context: ChannelHandlerContext) {
    let delay = run.delayBeforeFirstStream(ofSlot: index)
    if delay > .zero {
      firstStart = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { self.send(context) }
    } else {
      send(context)
    }
    context.fireChannelActive()
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let now = MonotonicClock.now()
    guard var response else { return }
    unwrapInboundIn(data).withUnsafeReadableBytes { bytes in
      run.recorder.receive(bytes, on: &response.timing, at: now)
      if response.head.count < Self.statusOK.count {
        response.head.append(contentsOf: bytes.prefix(Self.statusOK.count - response.head.count))
        response.isOK = response.head.elementsEqual(Self.statusOK)
      }
      var window = response.tail
      window.append(contentsOf: bytes)
      response.sawDone = response.sawDone || Self.contains(Self.done, in: window)
      response.sawLastChunk = response.sawLastChunk || Self.contains(Self.lastChunk, in: window)
      response.tail = Array(window.suffix(Self.done.count - 1))
    }
    self.response = response
    guard response.sawDone || response.sawLastChunk else { return }
    if !response.hasEnded {
      // [DONE] ends the stream for the client; a body that ends without it failed.
      self.response?.hasEnded = true
      guard run.streamEnded(response.timing, success: response.isOK && response.sawDone) else {
        self.response = nil
        retire()
        context.close(promise: nil)
        return
      }
    }
    // The next request goes on this connection once the whole body is in.
    if response.sawLastChunk { send(context) }
  }

  func channelInactive(context: ChannelHandlerContext) {
    firstStart?.cancel()
    if let response, !response.hasEnded {
      _ = run.streamEnded(response.timing, success: false)
    }
    response = nil
    retire()
    context.fireChannelInactive()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    context.close(promise: nil)
  }

  private func send(_ context: ChannelHandlerContext) {
    var buffer = context.channel.allocator.buffer(capacity: request.count)
    buffer.writeBytes(request)
    var timing = run.streamStarting()
    timing.sentAt = MonotonicClock.now()
    response = Response(timing: timing)
    context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
  }

  private func retire() {
    guard isLive else { return }
    isLive = false
    run.slotRetired()
  }

  private static func contains(_ pattern: [UInt8], in bytes: [UInt8]) -> Bool {
    guard bytes.count >= pattern.count else { return false }
    return (0...bytes.count - pattern.count).contains { start in
      bytes[start..<start + pattern.count].elementsEqual(pattern)
    }
  }
}
