import NIOCore
import NIOHTTP1
import NIOPosix

/// The idle keep-alive connections to vLLM of one event loop. Requests of that loop's gRPC calls
/// take a connection here, so a call and its upstream request share one thread and no lock.
final class LoopConnectionPool {
  let eventLoop: any EventLoop
  private let endpoint: UpstreamEndpoint
  private var idle: [UpstreamConnection] = []
  /// Idle connections kept at most; more are closed when they are released.
  private let maximumIdle: Int

  init(eventLoop: any EventLoop, endpoint: UpstreamEndpoint, maximumIdle: Int) {
    self.eventLoop = eventLoop
    self.endpoint = endpoint
    self.maximumIdle = maximumIdle
  }

  /// An idle connection, or a new one.
  func connection(_ completion: @escaping (Result<UpstreamConnection, any Error>) -> Void) {
    while let connection = idle.popLast() {
      if connection.isActive {
        completion(.success(connection))
        return
      }
    }
    let endpoint = self.endpoint
    ClientBootstrap(group: eventLoop)
      .channelOption(.socketOption(.tcp_nodelay), value: 1)
      .channelOption(.autoRead, value: false)
      .connectTimeout(.seconds(10))
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.addHTTPClientHandlers()
        }
      }
      .connect(host: endpoint.host, port: endpoint.port)
      .assumeIsolated()
      .whenComplete { result in
        switch result {
        case .success(let channel):
          do {
            let connection = UpstreamConnection(channel: channel, authority: endpoint.authority, pool: self)
            try channel.pipeline.syncOperations.addHandler(connection)
            completion(.success(connection))
          } catch {
            channel.close(promise: nil)
            completion(.failure(error))
          }
        case .failure(let error):
          completion(.failure(error))
        }
      }
  }

  func release(_ connection: UpstreamConnection) {
    guard connection.isActive else { return }
    if idle.count < maximumIdle {
      idle.append(connection)
      // A read stays pending while idle, so a close by the server is noticed.
      connection.read()
    } else {
      connection.close()
    }
  }

  func remove(_ connection: UpstreamConnection) {
    idle.removeAll { $0 === connection }
  }

  func closeAll() {
    let connections = idle
    idle.removeAll()
    for connection in connections { connection.close() }
  }
}

/// One keep-alive HTTP/1.1 connection to vLLM; reads only when its exchange asks for more.
final class UpstreamConnection: ChannelInboundHandler {
  typealias InboundIn = HTTPClientResponsePart
  typealias OutboundOut = HTTPClientRequestPart

  private let channel: any Channel
  private let authority: String
  private unowned let pool: LoopConnectionPool
  private var context: ChannelHandlerContext? = nil
  var exchange: UpstreamExchange? = nil

  init(channel: any Channel, authority: String, pool: LoopConnectionPool) {
    self.channel = channel
    self.authority = authority
    self.pool = pool
  }

  var isActive: Bool { channel.isActive && context != nil }

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    self.context = nil
  }

  func send(head: HTTPRequestHead, body: ByteBuffer?) {
    guard let context else {
      exchange?.connectionClosed()
      return
    }
    var head = head
    head.headers.replaceOrAdd(name: "host", value: authority)
    head.headers.replaceOrAdd(name: "content-length", value: String(body?.readableBytes ?? 0))
    context.write(wrapOutboundOut(.head(head)), promise: nil)
    if let body { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
    context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    context.read()
  }

  func read() {
    context?.read()
  }

  func close() {
    context?.close(promise: nil)
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    exchange?.received(unwrapInboundIn(data))
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    // Reading on only while a request wants more: a paused stream leaves bytes in the socket,
    // and TCP slows vLLM down.
    if let exchange, exchange.wantsRead { context.read() }
  }

  func channelInactive(context: ChannelHandlerContext) {
    pool.remove(self)
    exchange?.connectionClosed()
    exchange = nil
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    context.close(promise: nil)
  }
}
