import CoreMetrics
import NIOConcurrencyHelpers
import Prometheus

/// One RPC method's metrics: its calls in flight, and its calls by model, key and status with
/// their duration, time to first token and time per output token, tokens and stream moves.
/// Instruments are made once per label set and kept, so a call ends with one lookup of three
/// short strings under this method's own lock, not a registry search.
final class MethodMetrics: Sendable {
  let method: String
  private let factory: PrometheusMetricsFactory
  private let histograms: CallHistogramBuckets
  private let active: CoreMetrics.Meter
  private let perCall = NIOLockedValueBox(InstrumentsByLabels())

  /// The instruments made so far, and the last ones a call used: calls in a row mostly share
  /// their labels, and comparing three short strings costs a fraction of hashing them (about 600
  /// instructions a call, callgrind).
  private struct InstrumentsByLabels {
    var table: [CallLabels: CallInstruments] = [:]
    var last: (labels: CallLabels, instruments: CallInstruments)? = nil
  }

  struct CallLabels: Hashable {
    var model: String
    var key: String
    var status: String
  }

  /// A class: a call takes its instruments out of the lock as one reference, where a struct of
  /// seven was seven retains and releases (about 280 instructions a call, callgrind).
  final class CallInstruments: Sendable {
    let calls: CoreMetrics.Counter
    let duration: CallHistogram
    let firstToken: CallHistogram
    let perOutputToken: CallHistogram
    let promptTokens: CoreMetrics.Counter
    let completionTokens: CoreMetrics.Counter
    let migrations: CoreMetrics.Counter

    init(
      calls: CoreMetrics.Counter, duration: CallHistogram, firstToken: CallHistogram,
      perOutputToken: CallHistogram, promptTokens: CoreMetrics.Counter, completionTokens: CoreMetrics.Counter,
      migrations: CoreMetrics.Counter
    ) {
      self.calls = calls
      self.duration = duration
      self.firstToken = firstToken
      self.perOutputToken = perOutputToken
      self.promptTokens = promptTokens
      self.completionTokens = completionTokens
      self.migrations = migrations
    }
  }

  /// Every label set's instruments, for the page's histograms.
  var instruments: [CallInstruments] { perCall.withLockedValue { Array($0.table.values) } }

  init(method: String, factory: PrometheusMetricsFactory, histograms: CallHistogramBuckets) {
    self.method = method
    self.factory = factory
    self.histograms = histograms
    active = CoreMetrics.Meter(
      label: "vllm_grpc_gateway_active_calls", dimensions: [("method", method)], factory: factory)
  }

  /// A call began: it is in flight until `callEnded`.
  func callStarted() {
    active.increment()
  }

  func callEnded(_ record: CallRecord, status: String, endedAt: UInt64) {
    active.decrement()
    let labels = CallLabels(model: record.model, key: record.keyID ?? "", status: status)
    let instruments = perCall.withLockedValue { cache in
      if let last = cache.last, last.labels == labels { return last.instruments }
      let found: CallInstruments
      if let known = cache.table[labels] {
        found = known
      } else {
        found = make(labels)
        cache.table[labels] = found
      }
      cache.last = (labels, found)
      return found
    }
    instruments.calls.increment()
    instruments.duration.record(nanoseconds: endedAt &- record.startedAt)
    if record.firstEventAt > 0 {
      instruments.firstToken.record(nanoseconds: record.firstEventAt &- record.startedAt)
      if record.completionTokens > 1, record.lastEventAt >= record.firstEventAt {
        let perToken = (record.lastEventAt - record.firstEventAt) / UInt64(record.completionTokens - 1)
        instruments.perOutputToken.record(nanoseconds: perToken)
      }
    }
    if record.promptTokens > 0 { instruments.promptTokens.increment(by: record.promptTokens) }
    if record.completionTokens > 0 { instruments.completionTokens.increment(by: record.completionTokens) }
    if record.migrations > 0 { instruments.migrations.increment(by: record.migrations) }
  }

  private func make(_ labels: CallLabels) -> CallInstruments {
    let call = [("method", method), ("model", labels.model), ("key", labels.key)]
    let tokens = [("model", labels.model), ("key", labels.key)]
    return CallInstruments(
      calls: CoreMetrics.Counter(
        label: "vllm_grpc_gateway_calls_total", dimensions: call + [("status", labels.status)], factory: factory),
      duration: CallHistogram(buckets: histograms.duration, labels: call),
      firstToken: CallHistogram(buckets: histograms.firstToken, labels: call),
      perOutputToken: CallHistogram(buckets: histograms.perOutputToken, labels: call),
      promptTokens: CoreMetrics.Counter(
        label: "vllm_grpc_gateway_prompt_tokens_total", dimensions: tokens, factory: factory),
      completionTokens: CoreMetrics.Counter(
        label: "vllm_grpc_gateway_completion_tokens_total", dimensions: tokens, factory: factory),
      migrations: CoreMetrics.Counter(
        label: "vllm_grpc_gateway_stream_migrations_total", dimensions: call + [("status", labels.status)],
        factory: factory))
  }
}
