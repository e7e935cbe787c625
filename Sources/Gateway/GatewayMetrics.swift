import CoreMetrics
import Fleet
import NIOConcurrencyHelpers
import Prometheus

/// The gateway's metrics: each upstream's requests, failures, health and ejections and each
/// client key's limits, read as the page is scraped into swift-prometheus's registry; and the
/// calls' own, counted as they end with the gateway's atomic instruments (MethodMetrics): calls
/// by method, model, key and status, their duration, time to first token and time per output
/// token, tokens by model and key, calls in flight by method.
public final class GatewayMetrics: Sendable {
  public let registry: PrometheusCollectorRegistry
  private let factory: PrometheusMetricsFactory
  private let perMethod = NIOLockedValueBox<[String: MethodMetrics]>([:])

  public init() {
    registry = PrometheusCollectorRegistry()
    factory = PrometheusMetricsFactory(registry: registry)
  }

  /// The buckets of every method's call histograms.
  private let histograms = CallHistogramBuckets()

  /// The instruments of one RPC method, made once and shared: a route looks them up when it is
  /// made, so its calls never hash the method's name (about 1,000 instructions a call).
  func method(_ method: String) -> MethodMetrics {
    perMethod.withLockedValue { methods in
      if let known = methods[method] { return known }
      let made = MethodMetrics(method: method, buckets: histograms)
      methods[method] = made
      return made
    }
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
    var text = registry.emitToString()
    let methods = perMethod.withLockedValue { Array($0.values) }
    CallMetricsPage.write(methods, to: &text)
    return text
  }
}
