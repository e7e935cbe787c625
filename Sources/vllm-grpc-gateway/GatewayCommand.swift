import ArgumentParser
import Fleet
import Foundation
import GRPCServer
import GRPCStandardServices
import Gateway
import GatewayConfig
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServerCLI
import ServiceLifecycle
import VLLMClient

#if canImport(Glibc)
  import Glibc
#endif

@main
struct GatewayCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "vllm-grpc-gateway",
    abstract: "A gRPC (HTTP/2) API in front of vLLM's OpenAI-compatible HTTP API.",
    discussion: """
      Serves gRPC over cleartext HTTP/2 (h2c with prior knowledge), with the standard \
      grpc.health.v1.Health and server reflection (v1 and v1alpha) services. SIGTERM or SIGINT \
      starts a graceful shutdown: health turns NOT_SERVING, clients get GOAWAY, and calls in \
      flight may finish within the grace period. `vllm-grpc-gateway chat` asks a running gateway       a question.
      """,
    subcommands: [ChatCommand.self])

  @Option(help: "Address to listen on, HOST:PORT (or just PORT) (default: the config file's, else 0.0.0.0:50051).")
  var listen: String? = nil

  @Option(
    help: """
      Base URL of a vLLM server; repeat it for a fleet (default: the config file's upstreams, else \
      $VLLM_BASE_URL, else http://localhost:8000).
      """)
  var upstream: [String] = []

  @Option(
    help: """
      A configuration file, JSON or YAML: upstreams (or Bifrost's provider blocks), routing, health \
      and limits (default: $VLLM_GRPC_GATEWAY_CONFIG). Flags override it.
      """)
  var config: String? = nil

  @Option(help: "Bearer token for the vLLM servers given by --upstream (default: $VLLM_API_KEY).")
  var apiKey: String? = nil

  @Option(
    help: """
      How the Responses RPCs reach vLLM: auto (/v1/responses, switching to chat completions once \
      the upstream shows it lacks it), native, or chat.
      """)
  var responsesMode: String = ResponsesMode.auto.rawValue

  @Option(help: "Routing of chat, completions and Responses among a fleet: prefix (default), least_load, round_robin.")
  var routingPolicy: String? = nil

  @Option(help: "Routing of embeddings, rerank and score among a fleet: least_load (default), round_robin, prefix.")
  var poolingPolicy: String? = nil

  @Option(
    help: """
      Write one JSON line per call (time, method, model, key, upstream, status, tokens, duration, \
      time to first token, trace id) to this file, or to standard error with '-' (off by default).
      """)
  var accessLog: String? = nil

  @Option(
    help: ArgumentHelp(
      "A browser origin allowed to call over gRPC-Web and Connect (CORS), as https://app.example.com; '*' allows any.",
      discussion: "Repeat for several. Adds to the configuration file's web.cors_origins."))
  var corsOrigin: [String] = []

  @Option(help: "Serve Prometheus metrics at http://HOST:PORT/metrics (off by default).")
  var metricsListen: String? = nil

  @Option(
    help: "Requests in flight to vLLM at most, over the whole gateway; more calls get RESOURCE_EXHAUSTED (20000).")
  var maxUpstreamRequests: Int? = nil

  @Option(help: "Requests in flight to vLLM at most from one client connection (1000).")
  var maxUpstreamRequestsPerConnection: Int? = nil

  @Option(help: "Idle keep-alive connections to vLLM kept per event loop and upstream (1024).")
  var upstreamIdleConnections: Int? = nil

  @Option(help: "Seconds an idle keep-alive connection to vLLM is kept, below vLLM's own 5 (4).")
  var upstreamIdleTimeout: Double? = nil

  @Option(
    help: """
      Seconds vLLM may send nothing while a response is due (before the first byte, or between \
      two chunks) before the call ends UNAVAILABLE and the request is abandoned; 0 turns it off. \
      A client that does not read does not count: it has the stream idle timeout (300).
      """)
  var upstreamStallTimeout: Double? = nil

  @OptionGroup var server: ServerOptions

  func validate() throws {
    guard (server.tlsCertificate == nil) == (server.tlsKey == nil) else {
      throw ValidationError("--tls-certificate and --tls-key go together")
    }
    if let listen { _ = try ListenAddress(listen) }
    if let metricsListen { _ = try ListenAddress(metricsListen) }
    guard (maxUpstreamRequests ?? 1) > 0, (maxUpstreamRequestsPerConnection ?? 1) > 0 else {
      throw ValidationError("--max-upstream-requests and --max-upstream-requests-per-connection must be at least 1")
    }
    guard (upstreamIdleConnections ?? 0) >= 0, (upstreamIdleTimeout ?? 1) > 0,
      (upstreamIdleTimeout ?? 1) < ServerOptions.mostSeconds
    else {
      throw ValidationError(
        "--upstream-idle-connections cannot be negative, and --upstream-idle-timeout must be positive seconds")
    }
    guard (upstreamStallTimeout ?? 0) >= 0, (upstreamStallTimeout ?? 0) < ServerOptions.mostSeconds else {
      throw ValidationError("--upstream-stall-timeout must be seconds, 0 or more (0 turns it off)")
    }
    for (flag, value) in [("--routing-policy", routingPolicy), ("--pooling-policy", poolingPolicy)] {
      if let value, RoutingPolicyName(rawValue: value) == nil {
        let known = RoutingPolicyName.allCases.map(\.rawValue).joined(separator: ", ")
        throw ValidationError("\(flag) must be one of \(known); got '\(value)'")
      }
    }
    for url in upstream {
      do {
        try GatewayConfiguration.validateURL(url, path: "--upstream")
      } catch {
        throw ValidationError("--upstream must be an http:// or https:// URL; got '\(url)'")
      }
    }
    guard ResponsesMode(rawValue: responsesMode) != nil else {
      throw ValidationError("--responses-mode must be auto, native or chat; got '\(responsesMode)'")
    }
  }

  /// What the command line says of the configuration, apart from the command: a SIGHUP reads
  /// the file again under the same flags.
  var overrides: ConfigurationOverrides {
    ConfigurationOverrides(
      config: config, upstream: upstream, apiKey: apiKey, listen: listen, routingPolicy: routingPolicy,
      poolingPolicy: poolingPolicy, maxUpstreamRequests: maxUpstreamRequests,
      maxUpstreamRequestsPerConnection: maxUpstreamRequestsPerConnection,
      upstreamIdleConnections: upstreamIdleConnections, upstreamIdleTimeout: upstreamIdleTimeout,
      upstreamStallTimeout: upstreamStallTimeout, accessLog: accessLog, corsOrigins: corsOrigin)
  }

  func run() async throws {
    server.bootstrapLogging()
    // Until the reload service traps SIGHUP, its default action would end the process.
    signal(SIGHUP, SIG_IGN)
    let logger = Logger(label: "vllm-grpc-gateway")
    let environment = ProcessInfo.processInfo.environment
    let overrides = self.overrides
    let settings = try overrides.effectiveConfiguration(environment: environment)
    let address = try ListenAddress(settings.listen ?? "0.0.0.0:50051")
    // Everything that can refuse to start does so before any event loop or client exists.
    let tlsFiles: ServerTLS.Files? =
      if let certificate = server.tlsCertificate {
        ServerTLS.Files(certificateChain: certificate, privateKey: server.tlsKey ?? "", clientCA: server.tlsClientCa)
      } else {
        settings.tls.map {
          ServerTLS.Files(certificateChain: $0.certificate, privateKey: $0.key, clientCA: $0.clientCA)
        }
      }
    let serverTLS: ServerTLS?
    do {
      serverTLS = try tlsFiles.map { try ServerTLS(files: $0) }
    } catch {
      throw ValidationError("TLS is refused: \(error)")
    }
    if let tlsFiles {
      logger.info(
        "TLS", metadata: ["certificate": "\(tlsFiles.certificateChain)", "client-ca": "\(tlsFiles.clientCA ?? "none")"])
    }
    let accessLogWriter: AccessLog?
    do {
      accessLogWriter = try settings.accessLog.map { try AccessLog(path: $0) }
    } catch {
      throw ValidationError("cannot open the access log \(settings.accessLog ?? ""): \(error.localizedDescription)")
    }
    let tracing = try TracingSetup.start(environment: environment, logger: logger)
    if tracing != nil { logger.info("tracing", metadata: ["export": "OTLP, from the OTEL_* settings"]) }
    // One set of event loops for both sides: each call's upstream request runs on the loop of
    // its gRPC connection.
    let group = MultiThreadedEventLoopGroup(numberOfThreads: server.threads)
    let limits = settings.limits
    let stall = limits.upstreamStallTimeoutSeconds ?? 300
    let makeClient: @Sendable (UpstreamSpec) -> VLLMClient = { spec in
      VLLMClient(
        baseURL: spec.url, apiKey: spec.apiKey, eventLoopGroup: group,
        idleConnectionsPerLoop: limits.upstreamIdleConnections ?? 1024,
        idleConnectionTimeout: .nanoseconds(Int64((limits.upstreamIdleTimeoutSeconds ?? 4) * 1e9)),
        stallTimeout: stall > 0 ? .nanoseconds(Int64(stall * 1e9)) : nil, caFile: spec.caFile)
    }
    let plan = settings.fleetPlan
    for spec in plan.upstreams {
      logger.info(
        "upstream",
        metadata: [
          "url": "\(spec.url)", "weight": "\(spec.weight)", "api-key": "\(spec.apiKey == nil ? "none" : "set")",
          "models": "\(spec.models.map { "\($0)" } ?? "discovered")",
        ])
    }
    // One upstream from the command line keeps the direct path; a configuration file or several
    // upstreams make a fleet, which a SIGHUP can reconfigure.
    let fleet: Fleet
    if overrides.configurationPath(environment: environment) == nil && plan.upstreams.count == 1 {
      let spec = plan.upstreams[0]
      fleet = Fleet(single: makeClient(spec), extraHeaders: spec.extraHeaders, requestTimeout: spec.requestTimeout)
    } else {
      fleet = Fleet(plan: plan, logger: logger, makeClient: makeClient)
    }
    let checks = fleet.startChecks(on: group.next())
    let health = HealthService()
    // Each model is a service name of grpc.health.v1: SERVING while a healthy upstream serves it,
    // NOT_SERVING once none does (or none lists it any more).
    let knownModels = NIOLockedValueBox(Set<String>())
    fleet.observeModelHealth { models in
      let gone = knownModels.withLockedValue { known -> Set<String> in
        let now = Set(models.map(\.model))
        let gone = known.subtracting(now)
        known.formUnion(now)
        return gone
      }
      for (model, serving) in models { health.setStatus(serving ? .serving : .notServing, for: model) }
      for model in gone { health.setStatus(.notServing, for: model) }
    }
    var configuration = server.configuration
    configuration.tls = serverTLS
    let tlsReload = configuration.tls.map { tls in
      // cert-manager rotates the files in place: they are looked at every 5 s, off the event loops.
      Task.detached {
        while !Task.isCancelled {
          try? await Task.sleep(for: .seconds(5))
          do {
            if try tls.reloadIfChanged() { logger.notice("TLS certificate reloaded") }
          } catch {
            logger.error(
              "TLS files changed but cannot be used; the current certificate stays", metadata: ["reason": "\(error)"])
          }
        }
      }
    }
    // gRPC-Web and Connect share the port: same calls, same keys, same limits.
    configuration.web =
      settings.webEnabled ? WebConfiguration(allowedOrigins: settings.corsOrigins, codec: GatewayJSONCodec()) : nil
    configuration.maximumAdmittedCalls = limits.maxUpstreamRequests ?? 20_000
    configuration.maximumAdmittedCallsPerConnection = limits.maxUpstreamRequestsPerConnection ?? 1000
    // The calls' counts and the delays the gateway adds are kept for the metrics page only: without
    // one, no call reads the clock or counts for them (about 500 instructions a unary call).
    let statistics = CallStatistics()
    if metricsListen != nil { configuration.statistics = statistics }
    let keys = settings.keys.isEmpty ? nil : ClientKeys(settings.keys)
    if keys != nil { logger.info("client keys required", metadata: ["keys": "\(settings.keys.map(\.id))"]) }
    // Calls by method, model, key and status, with their timings and tokens, only with a metrics
    // port: without one nothing of it runs.
    let gatewayMetrics = metricsListen == nil ? nil : GatewayMetrics()
    var metricsChannel: (any Channel)? = nil
    if let metricsListen {
      let metricsAddress = try ListenAddress(metricsListen)
      metricsChannel = try await MetricsEndpoint.start(
        host: metricsAddress.host, port: metricsAddress.port, group: group,
        render: {
          gatewayMetrics?.recordFleet(fleet)
          if let keys { gatewayMetrics?.recordKeys(keys) }
          return statistics.prometheusText(prefix: "vllm_grpc_gateway") + (gatewayMetrics?.text() ?? "")
        })
      logger.info("metrics", metadata: ["address": "\(metricsAddress.host):\(metricsAddress.port)"])
    }
    // SIGHUP reads the configuration file again: upstreams, routing, health, keys, certificates;
    // and opens the access log again (logrotate). It is always caught: SIGHUP's default action
    // ended a gateway started without a configuration file.
    let configurationPath = overrides.configurationPath(environment: environment)
    let reload = ReloadOnHangup {
      accessLogWriter?.reopen()
      guard let path = configurationPath else {
        logger.notice("SIGHUP: no configuration file to read again (the gateway was started with flags only)")
        return
      }
      do {
        let fresh = try overrides.effectiveConfiguration(environment: environment)
        fleet.apply(fresh.fleetPlan)
        if let keys {
          keys.replace(with: fresh.keys)
          logger.notice("client keys reloaded", metadata: ["keys": "\(fresh.keys.map(\.id))"])
        } else if !fresh.keys.isEmpty {
          logger.notice("client keys in \(path) take effect at the next start: the gateway started open")
        }
        if let tls = serverTLS, try tls.reloadIfChanged() { logger.notice("TLS certificate reloaded") }
        if fresh.listen != settings.listen || fresh.limits != settings.limits {
          logger.notice("listen and limits changes in \(path) take effect at the next start")
        }
      } catch {
        logger.error("configuration reload refused; the current one stays", metadata: ["reason": "\(error)"])
      }
    }
    let shutdownClients = {
      tlsReload?.cancel()
      await accessLogWriter?.flush()
      checks?.cancel()
      await fleet.shutdown()
    }
    let service = VLLMService(
      fleet: fleet, responsesMode: ResponsesMode(rawValue: responsesMode) ?? .auto, keys: keys,
      accessLog: accessLogWriter, metrics: gatewayMetrics, tracer: tracing?.tracer,
      migration: settings.streamMigration)
    let standardServicesGate = settings.protectsStandardServices ? keys.map { $0.authenticate } : nil
    let serverConfiguration = configuration
    let gateway = GatewayServerService { untilShutdown in
      try await StandardServer.run(
        services: [service], host: address.host, port: address.port, group: group,
        configuration: serverConfiguration, health: health, standardServicesGate: standardServicesGate,
        untilShutdown: untilShutdown, logger: logger)
    }
    // SIGTERM and SIGINT shut the group down gracefully, last service first: the reload signal
    // stops, the server drains, and the trace exporter, first in the list, flushes last.
    var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
    if let tracing {
      services.append(
        .init(service: tracing.exporter, successTerminationBehavior: .ignore, failureTerminationBehavior: .ignore))
    }
    services.append(
      .init(
        service: gateway, successTerminationBehavior: .gracefullyShutdownGroup,
        failureTerminationBehavior: .gracefullyShutdownGroup))
    services.append(.init(service: reload, successTerminationBehavior: .ignore, failureTerminationBehavior: .ignore))
    var lifecycle = ServiceGroupConfiguration(
      services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
    // An unreachable trace collector must not hold the process past a drain.
    lifecycle.maximumGracefulShutdownDuration = .seconds(60)
    do {
      try await ServiceGroup(configuration: lifecycle).run()
    } catch {
      try? await metricsChannel?.close()
      await shutdownClients()
      try? await group.shutdownGracefully()
      throw error
    }
    try? await metricsChannel?.close()
    await shutdownClients()
    try await group.shutdownGracefully()
  }
}

/// `HOST:PORT`, `[IPv6]:PORT` or `PORT`.
struct ListenAddress {
  var host: String
  var port: Int

  init(_ text: String) throws {
    var hostPart = "0.0.0.0"
    var portPart = Substring(text)
    if let colon = text.lastIndex(of: ":") {
      hostPart = String(text[..<colon])
      portPart = text[text.index(after: colon)...]
      if hostPart.hasPrefix("[") && hostPart.hasSuffix("]") { hostPart = String(hostPart.dropFirst().dropLast()) }
    }
    guard let port = Int(portPart), (0...65535).contains(port), !hostPart.isEmpty else {
      throw ValidationError("--listen must be HOST:PORT, [IPv6]:PORT or PORT; got '\(text)'")
    }
    self.host = hostPart
    self.port = port
  }
}

/// The gRPC status codes with their standard names (`NOT_FOUND`), for the chat command, where
/// GRPCCore's `Status` makes the server's ambiguous.
typealias ServerStatusCode = Status.Code
