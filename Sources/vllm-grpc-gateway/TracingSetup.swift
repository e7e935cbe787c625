import ArgumentParser
import Logging
import OTel
import ServiceLifecycle
import Tracing

/// OpenTelemetry tracing through swift-otel, configured by the standard `OTEL_*` variables and
/// off unless they ask for it: an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` or
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) or `OTEL_TRACES_EXPORTER=otlp`, and not
/// `OTEL_SDK_DISABLED=true`. Off, no tracing code runs on any call.
enum TracingSetup {
  struct Tracing {
    let tracer: any Tracer
    /// Exports the spans; runs in the service group, which flushes it last at shutdown.
    let exporter: any Service
  }

  static func requested(_ environment: [String: String]) -> Bool {
    if environment["OTEL_SDK_DISABLED"]?.lowercased() == "true" { return false }
    if let exporter = environment["OTEL_TRACES_EXPORTER"]?.lowercased() { return exporter == "otlp" }
    return environment["OTEL_EXPORTER_OTLP_ENDPOINT"] != nil || environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] != nil
  }

  static func start(environment: [String: String], logger: Logger) throws -> Tracing? {
    guard requested(environment) else { return nil }
    // swift-otel stops the process on a propagator or sampler it lacks; refuse them clearly.
    let propagators = (environment["OTEL_PROPAGATORS"] ?? "").split(separator: ",").map {
      $0.trimmingCharacters(in: .whitespaces).lowercased()
    }
    let unsupported = propagators.filter { !["tracecontext", "none", ""].contains($0) }
    if !unsupported.isEmpty {
      throw ValidationError(
        "OTEL_PROPAGATORS: this gateway propagates W3C trace context only (tracecontext); not \(unsupported.joined(separator: ", "))"
      )
    }
    if let sampler = environment["OTEL_TRACES_SAMPLER"]?.lowercased(),
      ["jaeger_remote", "parentbased_jaeger_remote", "xray"].contains(sampler)
    {
      throw ValidationError(
        "OTEL_TRACES_SAMPLER=\(sampler) is not supported; use always_on, always_off, traceidratio or their parentbased_ forms"
      )
    }
    var configuration = OTel.Configuration.default
    configuration.serviceName = "vllm-grpc-gateway"
    // The gateway's metrics and logs have their own systems; only traces go through OTel.
    configuration.metrics.enabled = false
    configuration.logs.enabled = false
    configuration.diagnosticLogger = .custom(logger)
    configuration.diagnosticLogLevel = .warning
    do {
      let backend = try OTel.makeTracingBackend(configuration: configuration)
      return Tracing(tracer: backend.factory, exporter: backend.service)
    } catch {
      throw ValidationError("tracing cannot start from the OTEL_* settings: \(error)")
    }
  }
}
