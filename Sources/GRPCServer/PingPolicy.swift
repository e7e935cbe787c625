import NIOCore

/// Keepalive enforcement, as grpc-go's server does it: a client PING that comes sooner than the
/// allowed interval after the previous one is a strike, unless the server has sent headers or
/// data since; more than two strikes and the client is told `too_many_pings`.
struct PingPolicy {
  private static let maximumStrikes = 2
  /// grpc-go's interval for PINGs on a connection with no call, when those are not permitted.
  private static let intervalWithoutCalls: TimeAmount = .hours(2)

  private let minimumInterval: TimeAmount
  private let permitsWithoutCalls: Bool
  private var lastPingAt: NIODeadline? = nil
  private var strikes = 0
  /// Set when the server sends HEADERS or DATA: the next PING starts a clean slate.
  var resetsStrikes = false

  init(minimumInterval: TimeAmount, permitsWithoutCalls: Bool) {
    self.minimumInterval = minimumInterval
    self.permitsWithoutCalls = permitsWithoutCalls
  }

  /// A PING (not an ACK) arrived; false when the client has now pinged too often.
  mutating func pingReceived(openCalls: Int, now: NIODeadline = .now()) -> Bool {
    defer { lastPingAt = now }
    if resetsStrikes {
      resetsStrikes = false
      strikes = 0
      return true
    }
    guard let lastPingAt else { return true }
    let interval = openCalls == 0 && !permitsWithoutCalls ? Self.intervalWithoutCalls : minimumInterval
    if lastPingAt + interval > now { strikes += 1 }
    return strikes <= Self.maximumStrikes
  }
}
