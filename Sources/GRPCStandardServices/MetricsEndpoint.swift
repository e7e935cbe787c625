import NIOCore
import NIOHTTP1
import NIOPosix

/// A plain HTTP/1.1 endpoint serving Prometheus text at GET /metrics.
public enum MetricsEndpoint {
  public static func start(
    host: String, port: Int, group: any EventLoopGroup, render: @escaping @Sendable () -> String
  ) async throws -> any Channel {
    try await ServerBootstrap(group: group)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
          try channel.pipeline.syncOperations.addHandler(MetricsHandler(render: render))
        }
      }
      .bind(host: host, port: port)
      .get()
  }
}

final class MetricsHandler: ChannelInboundHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  private let render: @Sendable () -> String
  private var path: String? = nil

  init(render: @escaping @Sendable () -> String) {
    self.render = render
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .head(let head):
      path = head.method == .GET ? String(head.uri.prefix { $0 != "?" }) : nil
    case .body:
      break
    case .end:
      let found = path == "/metrics"
      let body = found ? render() : "not found\n"
      var headers = HTTPHeaders()
      headers.add(name: "content-type", value: found ? "text/plain; version=0.0.4" : "text/plain")
      headers.add(name: "content-length", value: String(body.utf8.count))
      context.write(
        wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: found ? .ok : .notFound, headers: headers))),
        promise: nil)
      context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
      context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
  }
}
