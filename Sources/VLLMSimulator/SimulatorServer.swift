import NIOCore
import NIOHTTP1
import NIOPosix

/// The simulator's listening socket.
public enum SimulatorServer {
  public static func start(
    host: String, port: Int, configuration: SimulatorConfiguration, stats: SimulatorStats, group: any EventLoopGroup
  ) async throws -> any Channel {
    try await ServerBootstrap(group: group)
      .serverChannelOption(.backlog, value: 1024)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
          try channel.pipeline.syncOperations.addHandler(
            SimulatorHandler(configuration: configuration, stats: stats))
        }
      }
      .bind(host: host, port: port)
      .get()
  }
}
