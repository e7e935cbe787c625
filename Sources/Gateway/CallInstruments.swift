import Synchronization

/// The counts of one method's calls with one model, key and status, and the times of its calls
/// with that model and key (shared by every status): counted from any event loop with relaxed
/// atomic additions and written out when the page is scraped. A class: a call takes its
/// instruments out of the method's lock as one reference.
final class CallInstruments: Sendable {
  let model: String
  let key: String
  /// `method="…",model="…",key="…",status="…"` as the page writes them.
  let callLabelsWithStatus: String
  let calls = Atomic<UInt64>(0)
  let promptTokens = Atomic<UInt64>(0)
  let completionTokens = Atomic<UInt64>(0)
  let migrations = Atomic<UInt64>(0)
  let times: Times

  /// The three time histograms of a method's calls with one model and key.
  final class Times: Sendable {
    let duration: CallHistogram
    let firstToken: CallHistogram
    let perOutputToken: CallHistogram

    init(method: String, model: String, key: String, buckets: CallHistogramBuckets) {
      let labels = CallMetricsPage.labels([("method", method), ("model", model), ("key", key)])
      duration = CallHistogram(buckets: buckets.duration, labels: labels)
      firstToken = CallHistogram(buckets: buckets.firstToken, labels: labels)
      perOutputToken = CallHistogram(buckets: buckets.perOutputToken, labels: labels)
    }
  }

  init(method: String, model: String, key: String, status: String, times: Times) {
    self.model = model
    self.key = key
    self.times = times
    callLabelsWithStatus = CallMetricsPage.labels([
      ("method", method), ("model", model), ("key", key), ("status", status),
    ])
  }

  /// Adds one ended call: its tokens, stream moves and times.
  func record(_ record: CallRecord, endedAt: UInt64) {
    calls.wrappingAdd(1, ordering: .relaxed)
    times.duration.record(nanoseconds: endedAt &- record.startedAt)
    if record.firstEventAt > 0 {
      times.firstToken.record(nanoseconds: record.firstEventAt &- record.startedAt)
      if record.completionTokens > 1, record.lastEventAt >= record.firstEventAt {
        let perToken = (record.lastEventAt - record.firstEventAt) / UInt64(record.completionTokens - 1)
        times.perOutputToken.record(nanoseconds: perToken)
      }
    }
    if record.promptTokens > 0 { promptTokens.wrappingAdd(UInt64(record.promptTokens), ordering: .relaxed) }
    if record.completionTokens > 0 {
      completionTokens.wrappingAdd(UInt64(record.completionTokens), ordering: .relaxed)
    }
    if record.migrations > 0 { migrations.wrappingAdd(UInt64(record.migrations), ordering: .relaxed) }
  }
}
