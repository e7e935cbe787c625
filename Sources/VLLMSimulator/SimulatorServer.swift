import NIOCore
import NIOHTTP1
import NIOPosix

/// The simulator's listening socket.
public enum SimulatorServer {
  public static func start(
    host: String, port: Int, configuration: SimulatorConfiguration, stats: SimulatorStats, group: any EventLoopGroup
  ) async throws -> any Channel {
    // One engine for every connection: the batch, the prefix cache and the metrics are the server's.
    let engine = SimulatorEngine(configuration: configuration)
    let stepClocks = EngineStepClocks()
    return try await ServerBootstrap(group: group)
      .serverChannelOption(.backlog, value: 1024)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
          try channel.pipeline.syncOperations.addHandler(
            SimulatorHandler(configuration: configuration, stats: stats, engine: engine, stepClocks: stepClocks))
        }
      }
      .bind(host: host, port: port)
      .get()
  }
}
