import Logging
import NIOCore
import NIOHTTP1
import NIOSSL

/// Serves gRPC-Web and Connect to HTTP/1.1 clients (browsers, curl, sonora). Each request
/// becomes a stream of an in-memory HTTP/2 connection to the server's own HTTP2ServerConnection
/// through a loopback nghttp2 client, and the stream's response becomes the HTTP/1.1 response:
/// one implementation of calls, limits and defences for both HTTP versions. Other HTTP/1.1
/// requests (plain gRPC needs HTTP/2) are refused with 415.
final class HTTP1WebHandler: ChannelInboundHandler, ConnectionOutput, LoopbackClientDelegate {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  /// Headers of HTTP/1.1 that mean nothing, or are not allowed, in HTTP/2.
  private static let hopByHopHeaders: Set<String> = [
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host", "te", "expect",
    "http2-settings",
  ]

  private let configuration: ServerConfiguration
  private let router: Router
  private let logger: Logger
  private let sendBudget: SendBufferBudget
  private let admission: CallAdmission
  private var context: ChannelHandlerContext? = nil
  private(set) var allocator = ByteBufferAllocator()
  private var server: HTTP2ServerConnection? = nil
  private var client: LoopbackHTTP2Client? = nil
  private var isTLS = false
  private var peerChecked = false
  private var isPumping = false
  private var isPumpScheduled = false
  private var isClosing = false
  /// The current request is being refused: its remaining parts are dropped.
  private var isRefusing = false
  private var keepAlive = true
  /// The request's HTTP version, which its response speaks (an HTTP/1.0 client gets no chunked
  /// body: its response ends when the connection closes).
  private var version = HTTPVersion.http1_1

  init(
    configuration: ServerConfiguration, router: Router, logger: Logger, sendBudget: SendBufferBudget,
    admission: CallAdmission
  ) {
    self.configuration = configuration
    self.router = router
    self.logger = logger
    self.sendBudget = sendBudget
    self.admission = admission
  }

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
    allocator = context.channel.allocator
    isTLS = (try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)) != nil
    var logger = self.logger
    if let remote = context.channel.remoteAddress { logger[metadataKey: "peer"] = "\(remote)" }
    logger[metadataKey: "http"] = "1.1"
    let server = HTTP2ServerConnection(
      configuration: configuration, router: router, eventLoop: context.eventLoop, logger: logger, output: self,
      sendBudget: sendBudget, admission: admission)
    self.server = server
    client = LoopbackHTTP2Client(delegate: self, windowSize: configuration.initialStreamWindowSize)
    server.start()
    pump()
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    tearDown()
    self.context = nil
  }

  func channelInactive(context: ChannelHandlerContext) {
    tearDown()
    context.fireChannelInactive()
  }

  private func tearDown() {
    server?.close()
    server = nil
    client?.close()
    client = nil
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard let client, !isClosing else { return }
    switch unwrapInboundIn(data) {
    case .head(let head):
      checkPeer(context)
      keepAlive = head.isKeepAlive
      version = head.version.minor == 0 ? .http1_0 : .http1_1
      guard isWebRequest(head) else {
        refuse(head, context: context)
        return
      }
      isRefusing = false
      guard client.submitRequest(headers: http2Headers(of: head)) else {
        refuse(head, context: context, status: .badRequest, reason: "request headers not valid in HTTP/2\n")
        return
      }
    case .body(let buffer):
      guard !isRefusing else { return }
      buffer.withUnsafeReadableBytes { client.appendBody($0) }
    case .end:
      guard !isRefusing else { return }
      client.endBody()
    }
    pump()
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    context.flush()
    context.fireChannelReadComplete()
  }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    server?.isOutputWritable = context.channel.isWritable
    if context.channel.isWritable {
      server?.flush()
      pump()
    }
    context.fireChannelWritabilityChanged()
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if event is ChannelShouldQuiesceEvent {
      keepAlive = false
      if client?.isResponding == true {
        server?.beginGracefulShutdown()  // its grace period bounds the response still going
      } else {
        closeConnection()
      }
    } else {
      context.fireUserInboundEventTriggered(event)
    }
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    logger.debug("connection error", metadata: ["error": "\(error)"])
    closeConnection()
  }

  /// Moves the loopback client's output into the server until neither has more to say. The
  /// server's answers come back through `write` meanwhile.
  private func pump() {
    guard !isPumping else { return }
    isPumping = true
    defer { isPumping = false }
    while let client, let server {
      var batch: ByteBuffer? = nil
      guard
        client.drainOutput({ bytes in
          if batch == nil { batch = allocator.buffer(capacity: bytes.count) }
          batch!.writeBytes(bytes)
        })
      else {
        closeConnection()
        return
      }
      guard let input = batch else { break }
      server.beginReadBatch()
      server.receive(input)
      server.endReadBatch()
    }
    context?.flush()
  }

  // MARK: ConnectionOutput (the server's side of the loopback)

  func write(_ bytes: ByteBuffer) {
    guard let client else { return }
    let accepted = bytes.withUnsafeReadableBytes { client.receive($0) }
    guard accepted else {
      logger.info("closing connection: the loopback client refused the server's HTTP/2")
      closeConnection()
      return
    }
    context?.flush()
    // The client may owe the server acknowledgements now; never feed the server from inside
    // its own flush, which is where this is called from.
    guard !isPumping, !isPumpScheduled, let context else { return }
    isPumpScheduled = true
    context.eventLoop.assumeIsolated().execute {
      self.isPumpScheduled = false
      self.pump()
    }
  }

  func closeConnection() {
    context?.flush()
    close(after: nil)
  }

  /// Closes once `written` (a response's end) has left, or at once; either way on a later turn
  /// of the event loop. This is called from inside nghttp2 (the loopback client's callbacks, the
  /// server's flush through `write`), and closing the channel fires channelInactive there and
  /// then (a write completes, and a socket closes, synchronously), whose tearDown frees both
  /// sessions while nghttp2 is still using them (fuzz: any HTTP/1.0 or `connection: close`
  /// request whose response ended).
  private func close(after written: EventLoopFuture<Void>?) {
    guard !isClosing, let context else { return }
    isClosing = true
    let loop = context.eventLoop.assumeIsolated()
    guard let written else {
      loop.execute { self.context?.close(promise: nil) }
      return
    }
    written.assumeIsolated().whenComplete { _ in loop.execute { self.context?.close(promise: nil) } }
  }

  // MARK: LoopbackClientDelegate

  func responseHead(status: Int, headers: [(String, String)]) {
    var head = HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: status))
    for (name, value) in headers { head.headers.add(name: name, value: value) }
    if !keepAlive { head.headers.replaceOrAdd(name: "connection", value: "close") }
    context?.write(wrapOutboundOut(.head(head)), promise: nil)
  }

  func responseBody(_ bytes: UnsafeRawBufferPointer) {
    var buffer = allocator.buffer(capacity: bytes.count)
    buffer.writeBytes(bytes)
    context?.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
  }

  func responseEnd() {
    guard let context else { return }
    let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
    if !keepAlive { close(after: written) }
  }

  func responseAbandoned() {
    // HTTP/1.1 has no way to say a response broke off but closing the connection.
    closeConnection()
  }

  // MARK: Requests

  private func isWebRequest(_ head: HTTPRequestHead) -> Bool {
    if head.method == .OPTIONS { return true }
    guard head.method == .POST, let contentType = head.headers.first(name: "content-type"),
      let wire = WireProtocol(contentType: contentType)
    else { return false }
    return wire != .grpc
  }

  private func http2Headers(of head: HTTPRequestHead) -> [(String, String)] {
    var headers = [
      (":method", head.method.rawValue), (":scheme", isTLS ? "https" : "http"),
      (":authority", head.headers.first(name: "host") ?? "localhost"), (":path", head.uri),
    ]
    for (name, value) in head.headers {
      let lowered = name.lowercased()
      guard !Self.hopByHopHeaders.contains(lowered) else { continue }
      headers.append((lowered, value))
    }
    return headers
  }

  private func refuse(
    _ head: HTTPRequestHead, context: ChannelHandlerContext, status: HTTPResponseStatus = .unsupportedMediaType,
    reason: String =
      "this port serves gRPC over HTTP/2, and gRPC-Web and Connect over HTTP/1.1 and HTTP/2\n"
  ) {
    logger.debug("refused HTTP/1.1 request", metadata: ["method": "\(head.method)", "uri": "\(head.uri)"])
    isRefusing = true
    var response = HTTPResponseHead(version: version, status: status)
    response.headers.add(name: "content-type", value: "text/plain")
    response.headers.add(name: "content-length", value: String(reason.utf8.count))
    response.headers.add(name: "connection", value: "close")
    context.write(wrapOutboundOut(.head(response)), promise: nil)
    context.write(wrapOutboundOut(.body(.byteBuffer(allocator.buffer(string: reason)))), promise: nil)
    close(after: context.writeAndFlush(wrapOutboundOut(.end(nil))))
  }

  private func checkPeer(_ context: ChannelHandlerContext) {
    guard !peerChecked, let server else { return }
    peerChecked = true
    if let tls = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self),
      let certificate = tls.peerCertificate
    {
      server.peerCommonName = certificate.subjectName.first { $0.type == .commonName }?.value
    }
  }
}
