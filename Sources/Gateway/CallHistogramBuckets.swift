/// The buckets of the three call histograms.
struct CallHistogramBuckets: Sendable {
  let duration = CallHistogram.Buckets(seconds: [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
  ])
  let firstToken = CallHistogram.Buckets(seconds: [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
  ])
  /// Finer: a token takes milliseconds.
  let perOutputToken = CallHistogram.Buckets(seconds: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64])
}
