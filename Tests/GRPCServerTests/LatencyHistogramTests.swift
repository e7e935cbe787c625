import Testing

@testable import GRPCServer

@Suite struct LatencyHistogramTests {
  @Test func bucketsRiseFromOneMicrosecond() {
    let bounds = LatencyHistogram.bounds
    #expect(bounds.first == 1_000)
    #expect(zip(bounds, bounds.dropFirst()).allSatisfy { $0 < $1 })
    // Steps of at most 2x, so a quantile read off a bucket is good to within a factor of two.
    #expect(zip(bounds, bounds.dropFirst()).allSatisfy { $1 <= 2 * $0 })
  }

  /// The written-out bounds are the steps they claim, and there is a counter for each bucket and
  /// the unbounded one after them.
  @Test func boundsAreTheStepsOfEachPowerOfTenAndEachHasACounter() {
    let powers: [UInt64] = [1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000]
    let expected = powers.flatMap { power in [10, 15, 20, 30, 50, 70].map { power * $0 / 10 } }
    #expect(LatencyHistogram.bounds == expected)
    #expect(LatencyHistogram().counts.count == expected.count + 1)
  }

  /// Around every bound, the bucket is the first whose bound is at or above the value, as a walk
  /// from the first bucket finds it.
  @Test func bucketIsTheFirstBoundAtOrAboveTheValue() {
    let bounds = LatencyHistogram.bounds
    let histogram = LatencyHistogram()
    // Each bound and each power of two (where the bucket a bit length starts at changes), with
    // their neighbours, and both ends.
    let powers = (0..<64).map { UInt64(1) << $0 }
    let values: [UInt64] = (bounds + powers).flatMap { [$0 - 1, $0, $0 &+ 1] } + [0, UInt64.max]
    for value in values {
      let walked = bounds.firstIndex { value <= $0 } ?? bounds.count
      #expect(histogram.bucket(of: value) == walked, "\(value)")
    }
  }

  @Test func observationsLandInTheirBucketsAndTheTextIsCumulative() {
    let histogram = LatencyHistogram()
    histogram.observe(nanoseconds: 0)
    histogram.observe(nanoseconds: 1_000)
    histogram.observe(nanoseconds: 1_001)
    histogram.observe(nanoseconds: 60_000_000_000)
    let counts = histogram.counts
    #expect(counts[0] == 2)
    #expect(counts[1] == 1)
    #expect(counts.last == 1)
    #expect(counts.reduce(0, +) == 4)
    let text = histogram.prometheusText(name: "x_seconds", help: "test")
    #expect(text.contains("x_seconds_bucket{le=\"1e-06\"} 2\n"))
    #expect(text.contains("x_seconds_bucket{le=\"1.5e-06\"} 3\n"))
    #expect(text.contains("x_seconds_bucket{le=\"+Inf\"} 4\n"))
    #expect(text.contains("x_seconds_count 4\n"))
    #expect(text.contains("x_seconds_sum 60.000002001\n"))
  }
}
