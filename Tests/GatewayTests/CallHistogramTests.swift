import Testing

@testable import Gateway

/// The call histograms count each value once, in its own bucket, and the page shows the buckets
/// cumulatively with the labels escaped as Prometheus' text format asks.
@Suite struct CallHistogramTests {
  @Test func bucketsAreCumulativeOnThePage() {
    let histogram = CallHistogram(
      buckets: CallHistogram.Buckets(seconds: [0.005, 0.5, 1]),
      labels: CallMetricsPage.labels([("method", "Chat"), ("model", #"a"b\c"#), ("key", "line\nbreak")]))
    // On a bound counts in that bucket; above every bound only in +Inf.
    for nanoseconds: UInt64 in [1, 5_000_000, 5_000_001, 1_000_000_000, 1_000_000_001, 90_000_000_000] {
      histogram.record(nanoseconds: nanoseconds)
    }
    var text = ""
    histogram.write(name: "h", to: &text)
    let labels = #"method="Chat",model="a\"b\\c",key="line\nbreak""#
    #expect(
      text == """
        h_bucket{\(labels),le="0.005"} 2
        h_bucket{\(labels),le="0.5"} 3
        h_bucket{\(labels),le="1.0"} 4
        h_bucket{\(labels),le="+Inf"} 6
        h_sum{\(labels)} 92.010000003
        h_count{\(labels)} 6

        """)
  }

  @Test func sixteenBoundsUseEveryBucket() {
    let seconds = (1...16).map { Double($0) }
    let histogram = CallHistogram(buckets: CallHistogram.Buckets(seconds: seconds), labels: "")
    for second in 1...17 { histogram.record(nanoseconds: UInt64(second) * 1_000_000_000) }
    var text = ""
    histogram.write(name: "h", to: &text)
    #expect(text.contains(#"h_bucket{le="16.0"} 16"#) && text.contains(#"h_bucket{le="+Inf"} 17"#))
    #expect(text.hasSuffix("h_sum 153.0\nh_count 17\n"))
  }
}
