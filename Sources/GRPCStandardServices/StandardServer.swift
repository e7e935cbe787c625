import GRPCServer
import Logging
import NIOCore
import NIOPosix

/// Runs a server with the standard services added: health (the empty name and every given
/// service SERVING) and reflection v1 and v1alpha over the bundled descriptor set. Prints one
/// "listening" line, then serves until SIGTERM or SIGINT, when it reports NOT_SERVING, sends
/// GOAWAY and lets in-flight calls finish within the grace period.
public enum StandardServer {
  public static func run(
    services: [any ServiceProvider], host: String, port: Int, threads: Int,
    configuration: ServerConfiguration, logger: Logger
  ) async throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
    try await run(
      services: services, host: host, port: port, group: group, configuration: configuration, logger: logger)
    try await group.shutdownGracefully()
  }

  /// The same on event loops the caller owns (and shuts down), shared with its own clients.
  public static func run(
    services: [any ServiceProvider], host: String, port: Int, group: MultiThreadedEventLoopGroup,
    configuration: ServerConfiguration, health: HealthService = HealthService(),
    standardServicesGate: (@Sendable (ServerCall) -> Status?)? = nil,
    untilShutdown: (@Sendable () async -> Void)? = nil, logger: Logger
  ) async throws {
    // Without a trigger of the caller's, SIGTERM or SIGINT; trapped before the port opens.
    let untilShutdown = if let untilShutdown { untilShutdown } else { await StandardServer.untilTerminationSignal() }
    let served = services.map(\.serviceName) + [health.serviceName] + ReflectionService.serviceNames
    guard
      let reflection = ReflectionService.bothVersions(
        descriptorSet: ReflectionService.bundledDescriptorSet, services: served)
    else { fatalError("the bundled descriptor set does not parse; rerun tools/generate-protos") }
    // Health and reflection are open unless the caller puts them behind a gate too.
    var standard: [any ServiceProvider] = [health] + (reflection as [any ServiceProvider])
    if let standardServicesGate { standard = standard.map { GatedService($0, gate: standardServicesGate) } }
    let providers: [any ServiceProvider] = services + standard
    for service in services { health.setStatus(.serving, for: service.serviceName) }
    // The server (and its quiescing helper, which completes a promise on the group when it goes
    // away) lives only inside `serve`, so the caller may shut the group down right after.
    try await serve(
      Router(providers), host: host, port: port, group: group, configuration: configuration, health: health,
      untilShutdown: untilShutdown, logger: logger)
    logger.notice("stopped")
  }

  /// Traps SIGTERM and SIGINT now (for servers that run no service group of their own) and
  /// returns what waits for one of them.
  public static func untilTerminationSignal() async -> @Sendable () async -> Void {
    let signal = await TerminationSignal.trap()
    return { await signal.wait() }
  }

  private static func serve(
    _ router: Router, host: String, port: Int, group: MultiThreadedEventLoopGroup,
    configuration: ServerConfiguration, health: HealthService, untilShutdown: @Sendable () async -> Void,
    logger: Logger
  ) async throws {
    // Each client connection takes a descriptor, and each of its calls may take another upstream.
    let descriptors = FileDescriptorLimit.raiseToHardLimit()
    if descriptors < UInt64(configuration.maximumConnections) * 2 {
      logger.warning(
        "the open-file limit is low for the connection limit; raise it (ulimit -n, LimitNOFILE=)",
        metadata: ["open-files": "\(descriptors)", "max-connections": "\(configuration.maximumConnections)"])
    }
    let server = try await GRPCServer.start(
      host: host, port: port, router: router, configuration: configuration, group: group, logger: logger)
    let address = server.localAddress.map { "\($0)" } ?? "\(host):\(port)"
    logger.notice(
      "listening",
      metadata: ["address": "\(address)", "threads": "\(group.makeIterator().reduce(0) { count, _ in count + 1 })"])
    await untilShutdown()
    logger.notice("shutting down")
    health.markAllNotServing()
    try await server.shutdownGracefully()
  }
}
