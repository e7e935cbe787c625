import NIOCore
import NIOPosix

/// One run of the probe on its one event loop: opens the connections, starts each slot's first
/// stream on the ramp's schedule, keeps the slots busy for the duration, and completes with the
/// summary when every slot has retired or the time limit passes.
final class ProbeRun {
  let plan: ProbePlan
  let eventLoop: any EventLoop
  let recorder = LatencyRecorder()
  private let done: EventLoopPromise<LatencySummary>
  private var startedAt: Int64 = 0
  /// Streams started from then on are measured.
  private var measuredFrom: Int64 = 0
  /// No stream starts from then on; nil: each slot runs one stream.
  private var lastStart: Int64? = nil
  private var liveSlots: Int
  private var openStreams = 0
  private var channels: [any Channel] = []
  private var timeout: Scheduled<Void>? = nil
  private var isFinished = false

  init(plan: ProbePlan, eventLoop: any EventLoop, done: EventLoopPromise<LatencySummary>) {
    self.plan = plan
    self.eventLoop = eventLoop
    self.done = done
    self.liveSlots = plan.slots
  }

  func start() {
    startedAt = MonotonicClock.now()
    if let duration = plan.durationSeconds {
      measuredFrom = startedAt + Self.nanoseconds(plan.rampSeconds)
      lastStart = measuredFrom + Self.nanoseconds(duration)
    } else {
      measuredFrom = startedAt
    }
    timeout = eventLoop.assumeIsolated().scheduleTask(in: .seconds(plan.timeoutSeconds)) { self.finish() }
    guard liveSlots > 0 else { return finish() }
    let body = plan.body
    switch plan.mode {
    case .h2:
      for index in 0..<plan.connections {
        connect(slots: plan.streamsPerConnection) { run in HTTP2ProbeConnection(run: run, index: index, body: body) }
      }
    case .http1:
      let request = HTTP1ProbeConnection.request(for: plan)
      for index in 0..<plan.connections {
        connect(slots: 1) { run in HTTP1ProbeConnection(run: run, index: index, request: request) }
      }
    }
  }

  // MARK: Called by the connections

  /// How long until the slot with this index (0 ..< slots) starts its first stream: the slots
  /// are spread evenly over the ramp.
  func delayBeforeFirstStream(ofSlot index: Int) -> TimeAmount {
    let offset = Self.nanoseconds(plan.rampSeconds * Double(index) / Double(max(plan.slots, 1)))
    return .nanoseconds(max(0, startedAt + offset - MonotonicClock.now()))
  }

  /// A stream is starting now: its timing, measured unless it starts during the warm-up.
  func streamStarting() -> StreamTiming {
    openStreams += 1
    return StreamTiming(measured: MonotonicClock.now() >= measuredFrom)
  }

  /// A stream ended, well or badly. Returns whether its slot starts another.
  func streamEnded(_ timing: StreamTiming, success: Bool) -> Bool {
    guard !isFinished else { return false }
    openStreams -= 1
    recorder.streamEnded(timing, success: success)
    guard let lastStart, MonotonicClock.now() < lastStart else { return false }
    return true
  }

  /// A slot could not start its stream (no connection, or the request was refused).
  func streamFailedToStart() {
    guard !isFinished else { return }
    recorder.streamEnded(nil, success: false)
  }

  /// A slot starts no more streams.
  func slotRetired() {
    guard !isFinished else { return }
    liveSlots -= 1
    if liveSlots == 0 { finish() }
  }

  // MARK: Running

  private func connect(slots: Int, handler: @escaping (ProbeRun) -> any ChannelHandler) {
    // The initializer runs on this same loop; NIOLoopBound carries the run there and checks it.
    let bound = NIOLoopBound((run: self, handler: handler), eventLoop: eventLoop)
    ClientBootstrap(group: eventLoop)
      .channelOption(.tcpOption(.tcp_nodelay), value: 1)
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.addHandler(bound.value.handler(bound.value.run))
        }
      }
      .connect(host: plan.host, port: plan.port)
      .assumeIsolated()
      .whenComplete { result in
        switch result {
        case .success(let channel):
          if self.isFinished { channel.close(promise: nil) } else { self.channels.append(channel) }
        case .failure:
          for _ in 0..<slots {
            self.streamFailedToStart()
            self.slotRetired()
          }
        }
      }
  }

  private func finish() {
    guard !isFinished else { return }
    isFinished = true
    timeout?.cancel()
    // Streams may end inside nghttp2 callbacks: close the connections after this turn.
    let channels = self.channels
    self.channels = []
    eventLoop.assumeIsolated().execute {
      for channel in channels { channel.close(promise: nil) }
    }
    done.succeed(recorder.summary(open: openStreams))
  }

  private static func nanoseconds(_ seconds: Double) -> Int64 {
    Int64(seconds * 1e9)
  }
}
