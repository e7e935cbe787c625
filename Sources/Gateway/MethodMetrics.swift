import Synchronization

/// One RPC method's metrics: its calls in flight, and its calls by model, key and status with
/// their duration, time to first token and time per output token, tokens and stream moves.
/// Instruments are made once per label set and kept, so a call ends with one lookup of three
/// short strings under this method's own lock, then relaxed atomic additions. They were
/// swift-metrics' counters, gauge and recorders over swift-prometheus's registry: each a call
/// through an existential and a retain, and a lock per histogram (about 1,100 instructions a
/// unary call with the histograms, callgrind); the page they made is the same (CallMetricsPage).
final class MethodMetrics: Sendable {
  let method: String
  private let buckets: CallHistogramBuckets
  private let active = Atomic<Int>(0)
  /// A standard library Mutex (a futex): NIO's lock, a pthread mutex, cost about 40 instructions
  /// more a call (callgrind).
  private let perCall = Mutex(InstrumentsByLabels())

  /// The instruments made so far, and the last ones a call used: calls in a row mostly share
  /// their labels, and comparing three short strings costs a fraction of hashing them (about 600
  /// instructions a call, callgrind).
  private struct InstrumentsByLabels {
    var table: [CallLabels: CallInstruments] = [:]
    var last: (labels: CallLabels, instruments: CallInstruments)? = nil
    /// The time histograms, by model and key: one series each, whatever the calls' statuses.
    var times: [TimeLabels: CallInstruments.Times] = [:]

    /// The last call's instruments when these are its labels, compared where they are kept:
    /// making a label set to compare retained and released its three strings.
    func lastInstruments(model: String, key: String?, status: String) -> CallInstruments? {
      guard let last, last.labels.model == model, last.labels.status == status else { return nil }
      if let key {
        guard last.labels.key == key else { return nil }
      } else {
        guard last.labels.key.isEmpty else { return nil }
      }
      return last.instruments
    }
  }

  struct CallLabels: Hashable {
    var model: String
    var key: String
    var status: String
  }

  struct TimeLabels: Hashable {
    var model: String
    var key: String
  }

  init(method: String, buckets: CallHistogramBuckets) {
    self.method = method
    self.buckets = buckets
  }

  /// Calls in flight now.
  var activeCalls: Int { active.load(ordering: .relaxed) }

  /// Every label set's instruments, for the page.
  var instruments: [CallInstruments] { perCall.withLock { Array($0.table.values) } }

  /// Every model and key's time histograms, for the page.
  var times: [CallInstruments.Times] { perCall.withLock { Array($0.times.values) } }

  /// A call began: it is in flight until `callEnded`.
  func callStarted() {
    active.wrappingAdd(1, ordering: .relaxed)
  }

  func callEnded(_ record: CallRecord, status: String, endedAt: UInt64) {
    active.wrappingSubtract(1, ordering: .relaxed)
    let instruments = perCall.withLock { cache in
      if let last = cache.lastInstruments(model: record.model, key: record.keyID, status: status) { return last }
      let labels = CallLabels(model: record.model, key: record.keyID ?? "", status: status)
      let found: CallInstruments
      if let known = cache.table[labels] {
        found = known
      } else {
        let timeLabels = TimeLabels(model: labels.model, key: labels.key)
        let times =
          cache.times[timeLabels]
          ?? CallInstruments.Times(method: method, model: labels.model, key: labels.key, buckets: buckets)
        cache.times[timeLabels] = times
        found = CallInstruments(
          method: method, model: labels.model, key: labels.key, status: labels.status, times: times)
        cache.table[labels] = found
      }
      cache.last = (labels, found)
      return found
    }
    instruments.record(record, endedAt: endedAt)
  }
}
