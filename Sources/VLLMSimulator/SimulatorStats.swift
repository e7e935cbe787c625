import NIOConcurrencyHelpers

/// Counters the tests read from GET /stats to prove what reached the upstream: requests by path,
/// and generations cut short because the client went away. Every request counted ends exactly
/// once, as completed (faults included: the simulator did what was asked) or aborted (the client
/// went away first), so in_flight is requests started and not yet ended.
public final class SimulatorStats: Sendable {
  struct Counts: Sendable {
    var requests = 0
    var aborted = 0
    var completed = 0
    var inFlight = 0
    /// Requests that arrived on a connection the simulator was closing and were never read.
    var closedUnprocessed = 0
    var byPath: [String: Int] = [:]
    var lastRequest: [UInt8] = []
    var lastHeaders: [(String, String)] = []
  }

  private let counts = NIOLockedValueBox(Counts())

  public init() {}

  func started(path: String, body: [UInt8], headers: [(String, String)]) {
    counts.withLockedValue {
      $0.requests += 1
      $0.inFlight += 1
      $0.byPath[path, default: 0] += 1
      $0.lastRequest = body
      $0.lastHeaders = headers
    }
  }

  /// A request for a route the simulator does not serve (it still shows in by_path).
  func unserved(path: String) {
    counts.withLockedValue {
      $0.requests += 1
      $0.byPath[path, default: 0] += 1
    }
  }

  func closedUnprocessed() {
    counts.withLockedValue { $0.closedUnprocessed += 1 }
  }

  func finished(aborted: Bool) {
    counts.withLockedValue {
      $0.inFlight -= 1
      if aborted { $0.aborted += 1 } else { $0.completed += 1 }
    }
  }

  func reset() {
    counts.withLockedValue { $0 = Counts() }
  }

  var snapshot: Counts { counts.withLockedValue { $0 } }
}
