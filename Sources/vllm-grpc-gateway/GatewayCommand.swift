import ArgumentParser
import GRPCServer
import GRPCStandardServices
import Gateway
import Logging
import NIOCore
import NIOPosix
import ServerCLI
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
      flight may finish within the grace period.
      """)

  @Option(help: "Address to listen on, HOST:PORT (or just PORT).")
  var listen: String = "0.0.0.0:50051"

  @Option(help: "Base URL of the vLLM server (default: $VLLM_BASE_URL, else http://localhost:8000).")
  var upstream: String? = nil

  @Option(help: "Bearer token for the vLLM server (default: $VLLM_API_KEY).")
  var apiKey: String? = nil

  @Option(
    help: """
      How the Responses RPCs reach vLLM: auto (/v1/responses, switching to chat completions once \
      the upstream shows it lacks it), native, or chat.
      """)
  var responsesMode: String = ResponsesMode.auto.rawValue

  @Option(help: "Serve Prometheus metrics at http://HOST:PORT/metrics (off by default).")
  var metricsListen: String? = nil

  @Option(help: "Requests in flight to vLLM at most, over the whole gateway; more calls get RESOURCE_EXHAUSTED.")
  var maxUpstreamRequests: Int = 20_000

  @Option(help: "Requests in flight to vLLM at most from one client connection.")
  var maxUpstreamRequestsPerConnection: Int = 1000

  @Option(help: "Idle keep-alive connections to vLLM kept per event loop.")
  var upstreamIdleConnections: Int = 1024

  @Option(help: "Seconds an idle keep-alive connection to vLLM is kept (below vLLM's own 5).")
  var upstreamIdleTimeout: Double = 4

  @Option(
    help: """
      Seconds vLLM may send nothing while a response is due (before the first byte, or between \
      two chunks) before the call ends UNAVAILABLE and the request is abandoned; 0 turns it off. \
      A client that does not read does not count: it has the stream idle timeout.
      """)
  var upstreamStallTimeout: Double = 300

  @OptionGroup var server: ServerOptions

  func validate() throws {
    _ = try ListenAddress(listen)
    if let metricsListen { _ = try ListenAddress(metricsListen) }
    guard maxUpstreamRequests > 0, maxUpstreamRequestsPerConnection > 0 else {
      throw ValidationError("--max-upstream-requests and --max-upstream-requests-per-connection must be at least 1")
    }
    guard upstreamIdleConnections >= 0, upstreamIdleTimeout > 0 else {
      throw ValidationError(
        "--upstream-idle-connections cannot be negative, and --upstream-idle-timeout must be positive")
    }
    guard upstreamStallTimeout >= 0 else {
      throw ValidationError("--upstream-stall-timeout cannot be negative (0 turns it off)")
    }
    guard ResponsesMode(rawValue: responsesMode) != nil else {
      throw ValidationError("--responses-mode must be auto, native or chat; got '\(responsesMode)'")
    }
  }

  func run() async throws {
    server.bootstrapLogging()
    let logger = Logger(label: "vllm-grpc-gateway")
    let environment = ProcessInfoEnvironment()
    let upstreamURL = upstream ?? environment["VLLM_BASE_URL"] ?? "http://localhost:8000"
    let key = apiKey ?? environment["VLLM_API_KEY"]
    logger.info("upstream", metadata: ["url": "\(upstreamURL)", "api-key": "\(key == nil ? "none" : "set")"])

    let address = try ListenAddress(listen)
    // One set of event loops for both sides: each call's upstream request runs on the loop of
    // its gRPC connection.
    let group = MultiThreadedEventLoopGroup(numberOfThreads: server.threads)
    let client = VLLMClient(
      baseURL: upstreamURL, apiKey: key, eventLoopGroup: group, idleConnectionsPerLoop: upstreamIdleConnections,
      idleConnectionTimeout: .nanoseconds(Int64(upstreamIdleTimeout * 1e9)),
      stallTimeout: upstreamStallTimeout > 0 ? .nanoseconds(Int64(upstreamStallTimeout * 1e9)) : nil)
    var configuration = server.configuration
    configuration.maximumAdmittedCalls = maxUpstreamRequests
    configuration.maximumAdmittedCallsPerConnection = maxUpstreamRequestsPerConnection
    let statistics = CallStatistics()
    configuration.statistics = statistics
    var metricsChannel: (any Channel)? = nil
    if let metricsListen {
      let metricsAddress = try ListenAddress(metricsListen)
      metricsChannel = try await MetricsEndpoint.start(
        host: metricsAddress.host, port: metricsAddress.port, group: group,
        render: { statistics.prometheusText(prefix: "vllm_grpc_gateway") })
      logger.info("metrics", metadata: ["address": "\(metricsAddress.host):\(metricsAddress.port)"])
    }
    do {
      try await StandardServer.run(
        services: [VLLMService(client: client, responsesMode: ResponsesMode(rawValue: responsesMode) ?? .auto)],
        host: address.host, port: address.port, group: group,
        configuration: configuration, logger: logger)
    } catch {
      try? await client.shutdown()
      try? await group.shutdownGracefully()
      throw error
    }
    try? await metricsChannel?.close()
    try await client.shutdown()
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

/// The process environment, read once.
struct ProcessInfoEnvironment {
  subscript(name: String) -> String? {
    getenv(name).map { String(cString: $0) }
  }
}
