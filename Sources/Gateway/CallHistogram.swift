import Synchronization

/// A histogram of one time a call takes (its duration, its time to first token, its time per
/// output token) for one method, model and key: recorded from any event loop with two relaxed
/// atomic additions, and written out as Prometheus' text when the page is scraped.
/// swift-prometheus's `Histogram` took a lock and walked every bucket to count the value in each
/// one it falls under, about 430 instructions a value with the lock (callgrind, two values a
/// unary call); this counts each value in its own bucket and adds them up for the page.
final class CallHistogram: Sendable {
  let buckets: Buckets
  /// The labels as the page writes them, `method="…",model="…",key="…"`.
  let labels: String
  /// The buckets' bounds in place (the unused ones the largest value), so recording reads no
  /// array: values by their bucket, the last one above every bound.
  private let bounds: InlineArray<16, UInt64>
  private let counts: InlineArray<17, Atomic<UInt64>>
  private let sumNanoseconds = Atomic<UInt64>(0)

  /// The upper bounds of a histogram's buckets, in nanoseconds, and as the page writes them in
  /// seconds (`le="0.005"`).
  struct Buckets: Sendable {
    let nanoseconds: [UInt64]
    let text: [String]

    /// At most 16 bounds, increasing.
    init(seconds: [Double]) {
      precondition(seconds.count <= 16 && zip(seconds, seconds.dropFirst()).allSatisfy { $0 < $1 })
      nanoseconds = seconds.map { UInt64(($0 * 1e9).rounded()) }
      text = seconds.map { "\($0)" }
    }
  }

  /// `labels` as `CallMetricsPage.labels` writes them.
  init(buckets: Buckets, labels: String) {
    self.buckets = buckets
    self.labels = labels
    let nanoseconds = buckets.nanoseconds
    bounds = InlineArray { index in index < nanoseconds.count ? nanoseconds[index] : .max }
    counts = InlineArray { _ in Atomic(0) }
  }

  func record(nanoseconds: UInt64) {
    var index = 0
    // A short walk: the unused bounds stop it at the last bucket.
    while index < bounds.count && nanoseconds > bounds[index] { index += 1 }
    counts[index].wrappingAdd(1, ordering: .relaxed)
    sumNanoseconds.wrappingAdd(nanoseconds, ordering: .relaxed)
  }

  /// The histogram's lines under `name` (its `# TYPE` line is the caller's, once per name):
  /// cumulative buckets, `+Inf`, sum in seconds, count.
  func write(name: String, to text: inout String) {
    let bucketLabels = labels.isEmpty ? "" : labels + ","
    let ownLabels = labels.isEmpty ? "" : "{\(labels)}"
    var cumulative: UInt64 = 0
    for (index, bound) in buckets.text.enumerated() {
      cumulative += counts[index].load(ordering: .relaxed)
      text += "\(name)_bucket{\(bucketLabels)le=\"\(bound)\"} \(cumulative)\n"
    }
    cumulative += counts[buckets.text.count].load(ordering: .relaxed)
    text += "\(name)_bucket{\(bucketLabels)le=\"+Inf\"} \(cumulative)\n"
    text += "\(name)_sum\(ownLabels) \(Double(sumNanoseconds.load(ordering: .relaxed)) / 1e9)\n"
    text += "\(name)_count\(ownLabels) \(cumulative)\n"
  }
}
