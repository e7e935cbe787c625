/// The calls' metrics in Prometheus' text format, each family with its `# TYPE` line: calls in
/// flight by method; calls and stream moves by method, model, key and status; tokens by model
/// and key (summed over methods and statuses); and the three time histograms by method, model
/// and key.
enum CallMetricsPage {
  static func write(_ methods: [MethodMetrics], to text: inout String) {
    guard !methods.isEmpty else { return }
    text += "# TYPE vllm_grpc_gateway_active_calls gauge\n"
    for method in methods {
      let labels = CallMetricsPage.labels([("method", method.method)])
      text += "vllm_grpc_gateway_active_calls{\(labels)} \(Double(method.activeCalls))\n"
    }
    let instruments = methods.flatMap(\.instruments)
    guard !instruments.isEmpty else { return }
    counters("vllm_grpc_gateway_calls_total", instruments, to: &text) { $0.calls.load(ordering: .relaxed) }
    tokens("vllm_grpc_gateway_prompt_tokens_total", instruments, to: &text) {
      $0.promptTokens.load(ordering: .relaxed)
    }
    tokens("vllm_grpc_gateway_completion_tokens_total", instruments, to: &text) {
      $0.completionTokens.load(ordering: .relaxed)
    }
    counters("vllm_grpc_gateway_stream_migrations_total", instruments, to: &text) {
      $0.migrations.load(ordering: .relaxed)
    }
    let times = methods.flatMap(\.times)
    let histograms: [(String, KeyPath<CallInstruments.Times, CallHistogram>)] = [
      ("vllm_grpc_gateway_call_duration_seconds", \.duration),
      ("vllm_grpc_gateway_time_to_first_token_seconds", \.firstToken),
      ("vllm_grpc_gateway_time_per_output_token_seconds", \.perOutputToken),
    ]
    for (name, histogram) in histograms {
      text += "# TYPE \(name) histogram\n"
      for each in times { each[keyPath: histogram].write(name: name, to: &text) }
    }
  }

  /// A counter by method, model, key and status.
  private static func counters(
    _ name: String, _ instruments: [CallInstruments], to text: inout String, _ count: (CallInstruments) -> UInt64
  ) {
    text += "# TYPE \(name) counter\n"
    for each in instruments { text += "\(name){\(each.callLabelsWithStatus)} \(count(each))\n" }
  }

  /// A counter by model and key: the sum over every method and status with them.
  private static func tokens(
    _ name: String, _ instruments: [CallInstruments], to text: inout String, _ count: (CallInstruments) -> UInt64
  ) {
    var sums: [String: UInt64] = [:]
    var order: [String] = []
    for each in instruments {
      let labels = CallMetricsPage.labels([("model", each.model), ("key", each.key)])
      if sums[labels] == nil { order.append(labels) }
      sums[labels, default: 0] &+= count(each)  // counters wrap, as the instruments do
    }
    text += "# TYPE \(name) counter\n"
    for labels in order { text += "\(name){\(labels)} \(sums[labels] ?? 0)\n" }
  }

  /// Labels as the page writes them, `name="value",…`.
  static func labels(_ labels: [(String, String)]) -> String {
    labels.map { name, value in "\(name)=\"\(escapedLabelValue(value))\"" }.joined(separator: ",")
  }

  /// A label value as Prometheus' text format quotes it.
  static func escapedLabelValue(_ value: String) -> String {
    var escaped = ""
    for character in value.unicodeScalars {
      switch character {
      case "\\": escaped += "\\\\"
      case "\"": escaped += "\\\""
      case "\n": escaped += "\\n"
      default: escaped.unicodeScalars.append(character)
      }
    }
    return escaped
  }
}
