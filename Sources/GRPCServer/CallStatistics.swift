import Atomics

/// Counts calls as they start and end, by status code, for a metrics endpoint and benchmarks.
/// Lock-free: every connection's event loop updates it.
public final class CallStatistics: Sendable {
  private let started = ManagedAtomic<Int>(0)
  private let finished: [ManagedAtomic<Int>] = Status.Code.allCases.map { _ in ManagedAtomic<Int>(0) }

  public init() {}

  func callStarted() {
    started.wrappingIncrement(ordering: .relaxed)
  }

  func callFinished(_ code: Status.Code) {
    finished[code.rawValue].wrappingIncrement(ordering: .relaxed)
  }

  public var startedCount: Int { started.load(ordering: .relaxed) }

  public func finishedCount(_ code: Status.Code) -> Int {
    finished[code.rawValue].load(ordering: .relaxed)
  }

  /// The counters in Prometheus' text format.
  public func prometheusText(prefix: String) -> String {
    var text = "# HELP \(prefix)_calls_started_total gRPC calls started.\n"
    text += "# TYPE \(prefix)_calls_started_total counter\n"
    text += "\(prefix)_calls_started_total \(startedCount)\n"
    text += "# HELP \(prefix)_calls_handled_total gRPC calls ended, by status code.\n"
    text += "# TYPE \(prefix)_calls_handled_total counter\n"
    var ended = 0
    for code in Status.Code.allCases {
      let count = finishedCount(code)
      ended += count
      text += "\(prefix)_calls_handled_total{grpc_code=\"\(code.name)\"} \(count)\n"
    }
    text += "# HELP \(prefix)_calls_in_flight gRPC calls started and not yet ended.\n"
    text += "# TYPE \(prefix)_calls_in_flight gauge\n"
    text += "\(prefix)_calls_in_flight \(max(startedCount - ended, 0))\n"
    return text
  }
}
