/// The buckets of the three call histograms, and their names on the page.
struct CallHistogramBuckets: Sendable {
  static let durationName = "vllm_grpc_gateway_call_duration_seconds"
  static let firstTokenName = "vllm_grpc_gateway_time_to_first_token_seconds"
  static let perOutputTokenName = "vllm_grpc_gateway_time_per_output_token_seconds"

  let duration = CallHistogram.Buckets(seconds: [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
  ])
  let firstToken = CallHistogram.Buckets(seconds: [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
  ])
  /// Finer: a token takes milliseconds.
  let perOutputToken = CallHistogram.Buckets(seconds: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64])

  /// Each histogram family with its `# TYPE` line, then every label set's lines.
  static func write(_ instruments: [MethodMetrics.CallInstruments], to text: inout String) {
    let families: [(String, KeyPath<MethodMetrics.CallInstruments, CallHistogram>)] = [
      (durationName, \.duration), (firstTokenName, \.firstToken), (perOutputTokenName, \.perOutputToken),
    ]
    for (name, histogram) in families where !instruments.isEmpty {
      text += "# TYPE \(name) histogram\n"
      for each in instruments { each[keyPath: histogram].write(name: name, to: &text) }
    }
  }
}
