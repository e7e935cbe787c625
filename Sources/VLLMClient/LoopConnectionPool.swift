import NIOCore
import NIOPosix

#if canImport(Glibc)
  import Glibc
#endif

/// The idle keep-alive connections to vLLM of one event loop. Requests of that loop's gRPC calls
/// take a connection here, so a call and its upstream request share one thread and no lock.
final class LoopConnectionPool {
  let eventLoop: any EventLoop
  private let endpoint: UpstreamEndpoint
  /// Idle connections, the most recently used last, each with when it went idle.
  private var idle: [(connection: UpstreamConnection, since: NIODeadline)] = []
  /// Idle connections kept at most; more are closed when they are released.
  private let maximumIdle: Int
  /// How long a connection may stay idle. Shorter than vLLM's own keep-alive (uvicorn closes
  /// idle connections after 5 s), so the gateway is the one that closes, not the one that
  /// writes a request onto a connection the server is closing.
  private let idleTimeout: TimeAmount
  private var sweepTimer: Scheduled<Void>? = nil
  /// The loop's exchanges that a stall timeout applies to (nil: none does).
  let stallWatch: StallWatch?
  /// Where the loop's event streams gather an event's data, lent to each as it parses a read.
  var spareEventData: [UInt8] = []
  /// The start of each path's requests from this loop, as bytes.
  var requestStarts = HTTP1RequestStarts()
  /// Buffers of requests that went out, for the loop's next requests.
  var spareRequestBuffers = SpareRequestBuffers()
  /// The receive buffer the loop's connections take turns reading into (UpstreamReadAllocator).
  let spareReadBuffer: SpareReadBuffer
  /// Made once for all the pool's connections: one per connection, with its options, lived as
  /// long as the connection took to open, and a burst of new streams opens thousands at once.
  private let bootstrap: ClientBootstrap
  /// The upstream's address when its host is an IP address: connecting straight to it skips
  /// the resolver and Happy Eyeballs, whose state per connection would come to nothing here.
  /// A burst's requests then reach vLLM about at once, as from any quick client; vllm-sim paces
  /// them with engine steps (EngineStepClock) and keeps reading requests while it does.
  private let address: SocketAddress?

  init(
    eventLoop: any EventLoop, endpoint: UpstreamEndpoint, maximumIdle: Int, idleTimeout: TimeAmount,
    stallTimeout: TimeAmount?
  ) {
    self.eventLoop = eventLoop
    self.stallWatch = stallTimeout.map { StallWatch(eventLoop: eventLoop, timeout: $0) }
    self.endpoint = endpoint
    self.maximumIdle = maximumIdle
    self.idleTimeout = idleTimeout
    let spareReadBuffer = SpareReadBuffer(eventLoop: eventLoop)
    self.spareReadBuffer = spareReadBuffer
    self.bootstrap = ClientBootstrap(group: eventLoop)
      .channelOption(.tcpOption(.tcp_nodelay), value: 1)
      .channelOption(.autoRead, value: false)
      // Receive buffers that go with each read: see UpstreamReadAllocator.
      .channelOption(.recvAllocator, value: UpstreamReadAllocator(spare: spareReadBuffer))
      .channelOption(.maxMessagesPerRead, value: 1)
      .connectTimeout(.seconds(10))
    self.address = try? SocketAddress(ipAddress: endpoint.host, port: endpoint.port)
  }

  /// The most recently idle connection still open, if any: asked before `connect`, so the common
  /// case hands one over without a completion closure to allocate.
  func idleConnection() -> UpstreamConnection? {
    while let (connection, _) = idle.popLast() {
      if connection.isActive { return connection }
    }
    return nil
  }

  /// A new connection.
  func connect(_ completion: @escaping (Result<UpstreamConnection, any Error>) -> Void) {
    connect()
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

  private func connect() -> EventLoopFuture<any Channel> {
    if let address { return bootstrap.connect(to: address) }
    return bootstrap.connect(host: endpoint.host, port: endpoint.port)
  }

  func release(_ connection: UpstreamConnection) {
    guard connection.isActive else { return }
    if idle.count < maximumIdle {
      idle.append((connection, .now()))
      // A read stays pending while idle, so a close by the server is noticed.
      connection.read()
      if sweepTimer == nil { scheduleSweep() }
    } else {
      connection.close()
    }
  }

  func remove(_ connection: UpstreamConnection) {
    idle.removeAll { $0.connection === connection }
  }

  func closeAll() {
    sweepTimer?.cancel()
    sweepTimer = nil
    let connections = idle
    idle.removeAll()
    for (connection, _) in connections { connection.close() }
  }

  /// Closes the connections idle for longer than the timeout, the least recently used first,
  /// checking again while any are left.
  private func scheduleSweep() {
    sweepTimer = eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(max(idleTimeout.nanoseconds / 2, 1_000_000)))
    {
      self.sweepTimer = nil
      let expired = NIODeadline.now() - self.idleTimeout
      var stale = 0
      while stale < self.idle.count && self.idle[stale].since <= expired { stale += 1 }
      let closing = self.idle.prefix(stale)
      self.idle.removeFirst(stale)
      for (connection, _) in closing { connection.close() }
      if !self.idle.isEmpty { self.scheduleSweep() }
    }
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
  /// A read asked of NIO that no bytes have answered yet: the pool asks for one when the
  /// connection goes idle (to notice a close), so a request sent on it finds one pending, and
  /// asking again would go through the pipeline for nothing (about 730 instructions a unary
  /// call, callgrind). NIO clears its own at each read that brings bytes, as channelRead does.
  private var isReadPending = false
  /// The server reset the connection (ECONNRESET). Its kernel does that when bytes reach a socket
  /// that was closed, or that is closed with bytes unread: what was written was never read.
  private var wasReset = false

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
      exchange?.connectionClosed(byReset: false)
      return
    }
    parser.reset()
    context.writeAndFlush(wrapOutboundOut(request), promise: nil)
    read()
  }

  func read() {
    guard !isReadPending, let context else { return }
    isReadPending = true
    context.read()
  }

  func close() {
    context?.close(promise: nil)
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    isReadPending = false
    guard let exchange else {
      // Bytes nobody asked for on an idle connection: it cannot be trusted with a request.
      context.close(promise: nil)
      return
    }
    exchange.lastReadAt = NIODeadline.now().uptimeNanoseconds
    var buffer = unwrapInboundIn(data)
    do {
      // Every event goes to the exchange the read began with: one that finishes on an event
      // ignores the rest, and no event follows the response's end (see below).
      while let event = try parser.next(&buffer) {
        exchange.received(event, in: buffer)
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
    // Parsed: the loop's next read may go into it (see SpareReadBuffer).
    pool.spareReadBuffer.giveBack(buffer)
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    // Reading on only while a request wants more: a paused stream leaves bytes in the socket,
    // and TCP slows vLLM down.
    if let exchange, exchange.wantsRead { read() }
  }

  func channelInactive(context: ChannelHandlerContext) {
    pool.remove(self)
    if let exchange {
      // A body delimited by the close ends here; any other response was cut short.
      if parser.connectionClosed() {
        exchange.responseEnded()
      } else {
        exchange.connectionClosed(byReset: wasReset)
      }
    }
    exchange = nil
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    if let error = error as? IOError, error.errnoCode == ECONNRESET { wasReset = true }
    context.close(promise: nil)
  }
}
