import NIOCore

/// Whether one upstream gets calls: active checks of its /health, and passive ejection after
/// consecutive failed calls, with a backoff that doubles each time it is ejected again.
struct UpstreamHealth: Sendable {
  var consecutiveFailures = 0
  /// Times ejected in a row without a clean readmission; sets the next backoff.
  var ejections = 0
  var ejectedUntil: NIODeadline? = nil
  /// Ejections since start, for metrics.
  var ejectionsTotal = 0
  /// Consecutive failed active checks.
  var failedChecks = 0

  var isEjected: Bool { ejectedUntil != nil }
  var checksFailing: Bool { failedChecks >= HealthPolicy.failedChecksToMarkDown }
  var isEligible: Bool { !isEjected && !checksFailing }

  /// A call that got an answer from the upstream.
  mutating func callSucceeded() {
    consecutiveFailures = 0
  }

  /// A call the upstream failed (unreachable, 5xx, cut short). Returns whether this ejects it;
  /// `mayEject` is false when it is the last eligible upstream of a model it serves.
  mutating func callFailed(now: NIODeadline, policy: HealthPolicy, mayEject: Bool) -> Bool {
    consecutiveFailures += 1
    guard !isEjected, mayEject, consecutiveFailures >= policy.consecutiveFailuresToEject else { return false }
    let backoff = policy.baseEjection.nanoseconds << Int64(min(ejections, 16))
    ejectedUntil = now + .nanoseconds(min(backoff, policy.maximumEjection.nanoseconds))
    ejections += 1
    ejectionsTotal += 1
    consecutiveFailures = 0
    return true
  }

  /// An active check's result. An ejected upstream is readmitted by the first good check after
  /// its backoff; a failed check while ejected extends the ejection by another backoff.
  mutating func checked(healthy: Bool, now: NIODeadline, policy: HealthPolicy) {
    if healthy {
      failedChecks = 0
      if let until = ejectedUntil, now >= until {
        ejectedUntil = nil
        consecutiveFailures = 0
      }
    } else {
      failedChecks += 1
      if let until = ejectedUntil, now >= until {
        let backoff = policy.baseEjection.nanoseconds << Int64(min(ejections, 16))
        ejectedUntil = now + .nanoseconds(min(backoff, policy.maximumEjection.nanoseconds))
        ejections += 1
      }
    }
  }

  /// Ejections stop doubling once an upstream has served well for a while.
  mutating func forgiveEjections() {
    if !isEjected && consecutiveFailures == 0 { ejections = 0 }
  }
}

/// How health is judged; see `FleetConfiguration`.
public struct HealthPolicy: Sendable {
  static let failedChecksToMarkDown = 2
  /// Consecutive failed calls that eject an upstream (Envoy's consecutive_5xx default: 5).
  public var consecutiveFailuresToEject = 5
  /// The first ejection's length; each further one doubles it, up to `maximumEjection`.
  public var baseEjection: TimeAmount = .seconds(1)
  public var maximumEjection: TimeAmount = .seconds(30)
  /// How often each upstream's /health is checked.
  public var checkInterval: TimeAmount = .seconds(2)
  public var checkTimeout: TimeAmount = .seconds(2)

  public init() {}
}
