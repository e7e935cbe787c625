import Atomics
import Logging
import NIOCore
import NIOExtras
import NIOPosix
import NIOSSL

/// A gRPC server over HTTP/2, cleartext (h2c with prior knowledge) or TLS with ALPN h2, one
/// nghttp2 session per connection on the connection's event loop.
public final class GRPCServer: Sendable {
  public let configuration: ServerConfiguration
  public let router: Router
  private let group: any EventLoopGroup
  private let logger: Logger
  private let quiescer: ServerQuiescingHelper
  private let channel: any Channel

  private init(
    configuration: ServerConfiguration, router: Router, group: any EventLoopGroup, logger: Logger,
    quiescer: ServerQuiescingHelper, channel: any Channel
  ) {
    self.configuration = configuration
    self.router = router
    self.group = group
    self.logger = logger
    self.quiescer = quiescer
    self.channel = channel
  }

  /// Binds and starts accepting connections.
  public static func start(
    host: String, port: Int, router: Router, configuration: ServerConfiguration = ServerConfiguration(),
    group: any EventLoopGroup, logger: Logger
  ) async throws -> GRPCServer {
    let quiescer = ServerQuiescingHelper(group: group)
    let openConnections = ManagedAtomic(0)
    let sendBudget = SendBufferBudget(limit: configuration.serverSendBufferLimit)
    let admission = CallAdmission(limit: configuration.maximumAdmittedCalls)
    let channel = try await ServerBootstrap(group: group)
      .serverChannelOption(.backlog, value: 1024)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .serverChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          // NIO's future-based bind adds no accept backoff: without it, an exhausted descriptor
          // table makes the listening socket spin its event loop.
          try channel.pipeline.syncOperations.addHandler(AcceptBackoffHandler())
          try channel.pipeline.syncOperations.addHandler(
            ConnectionLimitHandler(limit: configuration.maximumConnections, open: openConnections, logger: logger))
          try channel.pipeline.syncOperations.addHandler(quiescer.makeServerChannelHandler(channel: channel))
        }
      }
      .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
      .childChannelOption(.maxMessagesPerRead, value: 16)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          if let tls = configuration.tls {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.context))
          }
          guard configuration.web != nil else {
            try channel.pipeline.syncOperations.addHandler(
              GRPCConnectionHandler(
                configuration: configuration, router: router, logger: logger, sendBudget: sendBudget,
                admission: admission))
            return
          }
          // Web clients may come over HTTP/1.1: the first bytes tell which handler serves.
          try channel.pipeline.syncOperations.addHandler(
            sniffer(
              configuration: configuration, router: router, logger: logger, sendBudget: sendBudget,
              admission: admission))
        }
      }
      .bind(host: host, port: port)
      .get()
    return GRPCServer(
      configuration: configuration, router: router, group: group, logger: logger, quiescer: quiescer,
      channel: channel)
  }

  /// The handler that serves gRPC on one accepted, cleartext HTTP/2 connection. `start` installs
  /// it on every connection; use it directly for pipelines of your own (TLS in front, tests).
  public static func makeConnectionHandler(
    router: Router, configuration: ServerConfiguration = ServerConfiguration(), logger: Logger
  ) -> any ChannelHandler {
    GRPCConnectionHandler(
      configuration: configuration, router: router, logger: logger,
      sendBudget: SendBufferBudget(limit: configuration.serverSendBufferLimit),
      admission: CallAdmission(limit: configuration.maximumAdmittedCalls))
  }

  /// The first handler of a connection that may be HTTP/2 or HTTP/1.1 (gRPC-Web and Connect), as
  /// `start` installs it when `configuration.web` is set: it puts the right handlers in its place
  /// once the first bytes tell which. For pipelines of your own and fuzzing.
  public static func makeSniffingConnectionHandler(
    router: Router, configuration: ServerConfiguration = ServerConfiguration(), logger: Logger
  ) -> any ChannelHandler {
    sniffer(
      configuration: configuration, router: router, logger: logger,
      sendBudget: SendBufferBudget(limit: configuration.serverSendBufferLimit),
      admission: CallAdmission(limit: configuration.maximumAdmittedCalls))
  }

  private static func sniffer(
    configuration: ServerConfiguration, router: Router, logger: Logger, sendBudget: SendBufferBudget,
    admission: CallAdmission
  ) -> ProtocolSniffer {
    ProtocolSniffer(
      timeout: configuration.handshakeTimeout,
      makeHTTP2Handler: {
        GRPCConnectionHandler(
          configuration: configuration, router: router, logger: logger, sendBudget: sendBudget, admission: admission)
      },
      makeHTTP1Handler: {
        HTTP1WebHandler(
          configuration: configuration, router: router, logger: logger, sendBudget: sendBudget, admission: admission)
      })
  }

  /// The address the server listens on (useful with port 0).
  public var localAddress: SocketAddress? { channel.localAddress }

  /// Stops accepting connections, sends GOAWAY on every open one, and completes when all have
  /// closed: their calls finished, or the grace period ran out.
  public func shutdownGracefully() async throws {
    let promise = group.next().makePromise(of: Void.self)
    quiescer.initiateShutdown(promise: promise)
    try await promise.futureResult.get()
  }

  /// Completes when the listening socket closes.
  public func waitUntilClosed() async throws {
    try await channel.closeFuture.get()
  }
}
