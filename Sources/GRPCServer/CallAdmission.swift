import Atomics

/// Admission control for calls that put work somewhere else (the gateway: a request on vLLM): a
/// bound for the whole server, shared by every connection, beside each connection's own bound.
/// A call takes a place with `ServerCall.admit()` and gives it back when it ends, however it ends,
/// so no number of streams or resets can have more than the bound in flight.
public final class CallAdmission: Sendable {
  public let limit: Int
  private let admitted = ManagedAtomic(0)

  public init(limit: Int) {
    self.limit = limit
  }

  func take() -> Bool {
    guard admitted.loadThenWrappingIncrement(ordering: .relaxed) < limit else {
      admitted.wrappingDecrement(ordering: .relaxed)
      return false
    }
    return true
  }

  func release() {
    admitted.wrappingDecrement(ordering: .relaxed)
  }

  /// Calls admitted and not yet ended.
  public var admittedCount: Int { admitted.load(ordering: .relaxed) }
}

/// Why `ServerCall.admit()` refused a call.
public enum AdmissionRefusal: Sendable, Equatable {
  /// The call's connection has this many admitted calls in flight, its limit.
  case connectionFull(limit: Int)
  /// The server has this many admitted calls in flight, its limit.
  case serverFull(limit: Int)
}
