import Synchronization

/// Counts calls as they start and end, by status code, for a metrics endpoint and benchmarks.
/// Lock-free: every connection's event loop updates it.
public final class CallStatistics: Sendable {
  private let started = Atomic<Int>(0)
  /// By status code (17 of them), held in the object: an array of atomic objects cost a retain
  /// and release of the array and of the counter each call.
  private let finished = InlineArray<17, Atomic<Int>> { _ in Atomic(0) }

  /// What a proxying handler adds to its calls' latency, as the handlers report it (see
  /// `ServerCall.requestForwarded(at:)` and `ServerCall.send(_:compress:inputArrivedAt:)`):
  /// from the request's end to its handover to the handler's own upstream socket;
  public let requestForwardDelay = LatencyHistogram()
  /// from the arrival of the input a response message answers to the message's handover to
  /// this server's socket;
  public let messageDelay = LatencyHistogram()
  /// and the two together for a call's first response message: the time to first byte the
  /// handler adds.
  public let firstMessageAddedDelay = LatencyHistogram()

  public init() {}

  func callStarted() {
    started.wrappingAdd(1, ordering: .relaxed)
  }

  func callFinished(_ code: Status.Code) {
    finished[code.rawValue].wrappingAdd(1, ordering: .relaxed)
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
    text += requestForwardDelay.prometheusText(
      name: "\(prefix)_request_forward_delay_seconds",
      help: "From a request's end to its handover to the upstream socket.")
    text += messageDelay.prometheusText(
      name: "\(prefix)_message_delay_seconds",
      help: "From the arrival of the upstream bytes a response message answers to its handover to the client's socket.")
    text += firstMessageAddedDelay.prometheusText(
      name: "\(prefix)_first_message_added_delay_seconds",
      help: "Request forward delay plus the first response message's delay: the time to first byte the gateway adds.")
    return text
  }
}
