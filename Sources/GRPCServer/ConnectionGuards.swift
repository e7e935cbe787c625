import NIOCore

/// What one connection's client has done that the defences in `ServerConfiguration` watch:
/// glitches, flood counters, keepalive strikes, the handshake, and where its input stands.
struct ConnectionGuards {
  var frames = FrameBoundaryTracker()
  var glitches: TokenBucket
  var pings: PingPolicy
  /// The stream nghttp2 last reported an invalid frame on: the RST_STREAM it sends for that
  /// frame is the same glitch, not a second one.
  var lastInvalidFrameStreamID: Int32 = -1
  var streamsOpened = 0
  var windowUpdates = 0
  var dataFramesSent = 0
  var receivedClientSettings = false
  var receivedSettingsAck = false
  /// The housekeeping tick at which the input stopped inside a request head, if it has.
  var requestHeadSinceTick: Int? = nil
  /// The tick at which the last call closed (0: the connection's start).
  var idleSinceTick = 0
  let startedAt = NIODeadline.now()
  /// gRFC A9's jittered maximum age, if one is set.
  let ageDeadline: NIODeadline?
  /// How often the connection's housekeeping timer ticks: a quarter of the shortest timeout, so
  /// each fires at most a quarter late; nil when every timeout is off.
  let tickInterval: TimeAmount?

  init(configuration: ServerConfiguration) {
    glitches = TokenBucket(burst: configuration.glitchBurst, perSecond: configuration.glitchesPerSecond)
    pings = PingPolicy(
      minimumInterval: configuration.minimumPingInterval,
      permitsWithoutCalls: configuration.permitsPingsWithoutCalls)
    if let age = configuration.maximumConnectionAge {
      let jitter = Double.random(in: 0.9...1.1)
      ageDeadline = startedAt + .nanoseconds(Int64(Double(age.nanoseconds) * jitter))
    } else {
      ageDeadline = nil
    }
    let timeouts = [
      configuration.handshakeTimeout, configuration.requestHeadersTimeout, configuration.connectionIdleTimeout,
      configuration.streamIdleTimeout, configuration.maximumConnectionAge,
    ].compactMap { $0 }
    if let shortest = timeouts.min() {
      tickInterval = .nanoseconds(min(max(shortest.nanoseconds / 4, 50_000_000), 5_000_000_000))
    } else {
      tickInterval = nil
    }
  }

  /// Whole ticks in `timeout`, at least one.
  func ticks(_ timeout: TimeAmount) -> Int {
    guard let tickInterval else { return Int.max }
    return max(1, Int((timeout.nanoseconds + tickInterval.nanoseconds - 1) / tickInterval.nanoseconds))
  }

  var handshakeComplete: Bool { receivedClientSettings && receivedSettingsAck }

  mutating func noteRequestHeadProgress(tick: Int) {
    if frames.isMidRequestHead {
      if requestHeadSinceTick == nil { requestHeadSinceTick = tick }
    } else {
      requestHeadSinceTick = nil
    }
  }

  /// Whether the client has sent more PRIORITY frames than its allowance (as Envoy's).
  func hasSentTooManyPriorityFrames(limitPerStream: Int) -> Bool {
    frames.priorityFrames > limitPerStream * (1 + streamsOpened)
  }

  /// A WINDOW_UPDATE frame: false once there are far more than the DATA frames sent justify.
  mutating func windowUpdateReceived(limitPerDataFrame: Int) -> Bool {
    windowUpdates += 1
    return windowUpdates <= 100 + 2 * streamsOpened + limitPerDataFrame * dataFramesSent
  }
}
