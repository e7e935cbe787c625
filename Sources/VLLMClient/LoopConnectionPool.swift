import NIOCore
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
      .connect(host: endpoint.host, port: endpoint.port)
      .assumeIsolated()
      .whenComplete { result in
        switch result {
        case .success(let channel):
          do {
            let connection = UpstreamConnection(channel: channel, pool: self)
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
  typealias InboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  private let channel: any Channel
  private unowned let pool: LoopConnectionPool
  private var context: ChannelHandlerContext? = nil
  private var parser = HTTP1ResponseParser()
  var exchange: UpstreamExchange? = nil

  init(channel: any Channel, pool: LoopConnectionPool) {
    self.channel = channel
    self.pool = pool
  }

  var isActive: Bool { channel.isActive && context != nil }

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    self.context = nil
  }

  /// Writes a whole request (see `HTTP1Request`) and starts reading its response.
  func send(_ request: ByteBuffer) {
    guard let context else {
      exchange?.connectionClosed()
      return
    }
    parser.reset()
    context.writeAndFlush(wrapOutboundOut(request), promise: nil)
    context.read()
  }

  func read() {
    context?.read()
  }

  func close() {
    context?.close(promise: nil)
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard let exchange else {
      // Bytes nobody asked for on an idle connection: it cannot be trusted with a request.
      context.close(promise: nil)
      return
    }
    exchange.lastReadAt = NIODeadline.now().uptimeNanoseconds
    var buffer = unwrapInboundIn(data)
    do {
      while let event = try parser.next(&buffer) {
        self.exchange?.received(event)
        if case .end = event, buffer.readableBytes > 0 {
          // More than the response: the connection is out of step with its requests.
          context.close(promise: nil)
          return
        }
      }
    } catch {
      if let exchange = self.exchange {
        exchange.fail(VLLMError(kind: .malformed, httpStatus: 502, message: "vLLM sent a malformed response: \(error)"))
      } else {
        context.close(promise: nil)
      }
    }
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    // Reading on only while a request wants more: a paused stream leaves bytes in the socket,
    // and TCP slows vLLM down.
    if let exchange, exchange.wantsRead { context.read() }
  }

  func channelInactive(context: ChannelHandlerContext) {
    pool.remove(self)
    if let exchange {
      // A body delimited by the close ends here; any other response was cut short.
      if parser.connectionClosed() { exchange.received(.end) } else { exchange.connectionClosed() }
    }
    exchange = nil
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    context.close(promise: nil)
  }
}
