import CoreMetrics
import Fleet
import NIOConcurrencyHelpers
import Prometheus

/// The gateway's metrics, through swift-metrics into swift-prometheus's registry: calls by method,
/// model, key and status; their duration, time to first token and time per output token as
/// histograms; tokens by model and key; calls in flight by method; and each upstream's requests,
/// failures, health and ejections. Instruments are made once per label set and kept, so a call
/// ends with one dictionary lookup under a lock, not a registry search.
public final class GatewayMetrics: Sendable {
  public let registry: PrometheusCollectorRegistry
  private let factory: PrometheusMetricsFactory
  private let perCall = NIOLockedValueBox<[CallLabels: CallInstruments]>([:])
  private let perMethod = NIOLockedValueBox<[String: CoreMetrics.Meter]>([:])

  struct CallLabels: Hashable {
    var method: String
    var model: String
    var key: String
    var status: String
  }

  struct CallInstruments {
    let calls: CoreMetrics.Counter
    let duration: CoreMetrics.Timer
    let firstToken: CoreMetrics.Timer
    let perOutputToken: CoreMetrics.Timer
    let promptTokens: CoreMetrics.Counter
    let completionTokens: CoreMetrics.Counter
    let migrations: CoreMetrics.Counter
  }

  public init() {
    registry = PrometheusCollectorRegistry()
    var factory = PrometheusMetricsFactory(registry: registry)
    let seconds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
    factory.defaultDurationHistogramBuckets = seconds.map { .nanoseconds(Int64($0 * 1e9)) }
    factory.durationHistogramBuckets["vllm_grpc_gateway_time_per_output_token_seconds"] =
      [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64].map { .nanoseconds(Int64($0 * 1e9)) }
    self.factory = factory
  }

  /// A call began: it is in flight for its method until `callEnded` decrements the meter
  /// returned, which the call keeps rather than looking it up twice.
  func callStarted(method: String) -> CoreMetrics.Meter {
    let active = meter(method)
    active.increment()
    return active
  }

  func callEnded(_ record: CallRecord, status: String, endedAt: UInt64) {
    record.activeCalls?.decrement()
    let labels = CallLabels(method: record.method, model: record.model, key: record.keyID ?? "", status: status)
    let instruments = perCall.withLockedValue { cache in
      if let known = cache[labels] { return known }
      let made = make(labels)
      cache[labels] = made
      return made
    }
    instruments.calls.increment()
    instruments.duration.recordNanoseconds(Int64(endedAt &- record.startedAt))
    if record.firstEventAt > 0 {
      instruments.firstToken.recordNanoseconds(Int64(record.firstEventAt &- record.startedAt))
      if record.completionTokens > 1, record.lastEventAt >= record.firstEventAt {
        let perToken = (record.lastEventAt - record.firstEventAt) / UInt64(record.completionTokens - 1)
        instruments.perOutputToken.recordNanoseconds(Int64(perToken))
      }
    }
    if record.promptTokens > 0 { instruments.promptTokens.increment(by: record.promptTokens) }
    if record.completionTokens > 0 { instruments.completionTokens.increment(by: record.completionTokens) }
    if record.migrations > 0 { instruments.migrations.increment(by: record.migrations) }
  }

  private func meter(_ method: String) -> CoreMetrics.Meter {
    perMethod.withLockedValue { meters in
      if let meter = meters[method] { return meter }
      let meter = CoreMetrics.Meter(
        label: "vllm_grpc_gateway_active_calls", dimensions: [("method", method)], factory: factory)
      meters[method] = meter
      return meter
    }
  }

  private func make(_ labels: CallLabels) -> CallInstruments {
    let call = [("method", labels.method), ("model", labels.model), ("key", labels.key)]
    let tokens = [("model", labels.model), ("key", labels.key)]
    return CallInstruments(
      calls: CoreMetrics.Counter(
        label: "vllm_grpc_gateway_calls_total", dimensions: call + [("status", labels.status)], factory: factory),
      duration: CoreMetrics.Timer(label: "vllm_grpc_gateway_call_duration_seconds", dimensions: call, factory: factory),
      firstToken: CoreMetrics.Timer(
        label: "vllm_grpc_gateway_time_to_first_token_seconds", dimensions: call, factory: factory),
      perOutputToken: CoreMetrics.Timer(
        label: "vllm_grpc_gateway_time_per_output_token_seconds", dimensions: call, factory: factory),
      promptTokens: CoreMetrics.Counter(
        label: "vllm_grpc_gateway_prompt_tokens_total", dimensions: tokens, factory: factory),
      completionTokens: CoreMetrics.Counter(
        label: "vllm_grpc_gateway_completion_tokens_total", dimensions: tokens, factory: factory),
      migrations: CoreMetrics.Counter(
        label: "vllm_grpc_gateway_stream_migrations_total", dimensions: call + [("status", labels.status)],
        factory: factory))
  }

  /// Each upstream's state, read as the page is scraped.
  public func recordFleet(_ fleet: Fleet) {
    for upstream in fleet.upstreams {
      let labels = [("upstream", upstream.name)]
      let report = upstream.report
      CoreMetrics.Gauge(label: "vllm_grpc_gateway_upstream_healthy", dimensions: labels, factory: factory)
        .record(report.eligible ? 1 : 0)
      CoreMetrics.Gauge(label: "vllm_grpc_gateway_upstream_calls_in_flight", dimensions: labels, factory: factory)
        .record(report.callsInFlight)
      CoreMetrics.Gauge(label: "vllm_grpc_gateway_upstream_requests", dimensions: labels, factory: factory)
        .record(report.requests)
      CoreMetrics.Gauge(label: "vllm_grpc_gateway_upstream_failures", dimensions: labels, factory: factory)
        .record(report.failures)
      CoreMetrics.Gauge(label: "vllm_grpc_gateway_upstream_ejections", dimensions: labels, factory: factory)
        .record(report.ejections)
      CoreMetrics.Gauge(label: "vllm_grpc_gateway_upstream_vllm_waiting", dimensions: labels, factory: factory)
        .record(report.vllmWaiting)
    }
  }

  /// Each client key's limits and what it has left, read as the page is scraped: for alerts on a
  /// key near its limit.
  public func recordKeys(_ keys: ClientKeys) {
    for key in keys.keys {
      let labels = [("key", key.rule.id)]
      let available = key.available
      CoreMetrics.Gauge(label: "vllm_grpc_gateway_key_calls_in_flight", dimensions: labels, factory: factory)
        .record(available.streams)
      if let limit = key.rule.requestsPerMinute, let left = available.requests {
        CoreMetrics.Gauge(
          label: "vllm_grpc_gateway_key_requests_per_minute_limit", dimensions: labels, factory: factory
        )
        .record(limit)
        CoreMetrics.Gauge(label: "vllm_grpc_gateway_key_requests_available", dimensions: labels, factory: factory)
          .record(left)
      }
      if let limit = key.rule.tokensPerMinute, let left = available.tokens {
        CoreMetrics.Gauge(label: "vllm_grpc_gateway_key_tokens_per_minute_limit", dimensions: labels, factory: factory)
          .record(limit)
        CoreMetrics.Gauge(label: "vllm_grpc_gateway_key_tokens_available", dimensions: labels, factory: factory)
          .record(left)
      }
    }
  }

  /// The Prometheus text of everything here.
  public func text() -> String {
    registry.emitToString()
  }
}
