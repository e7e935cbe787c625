import UnixSignals

/// SIGTERM and SIGINT, the signals that start a graceful shutdown, trapped from the moment
/// `trap()` returns (swift-service-lifecycle's UnixSignals, which waits until the kernel has the
/// handlers). Trap before the server listens: a signal sent as soon as the port answers then
/// shuts it down gracefully, where a handler installed afterwards let the default action kill the
/// process in between, or, not yet registered, let the signal pass unseen.
public struct TerminationSignal: Sendable {
  private let signals: UnixSignalsSequence

  private init(signals: UnixSignalsSequence) { self.signals = signals }

  public static func trap() async -> TerminationSignal {
    TerminationSignal(signals: await UnixSignalsSequence(trapping: .sigterm, .sigint))
  }

  /// Returns once one of them has arrived (at once if one came since `trap()`).
  public func wait() async {
    var arrivals = signals.makeAsyncIterator()
    _ = await arrivals.next()
  }
}
