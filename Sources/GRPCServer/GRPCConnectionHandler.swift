import Logging
import NIOCore
import NIOExtras
import NIOSSL

/// The channel handler of one accepted connection: hands received bytes to the connection's
/// nghttp2 session and writes what it produces, one write and flush per read batch.
final class GRPCConnectionHandler: ChannelInboundHandler, ConnectionOutput {
  typealias InboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  private let configuration: ServerConfiguration
  private let router: Router
  private let logger: Logger
  private let sendBudget: SendBufferBudget
  private let admission: CallAdmission
  private var context: ChannelHandlerContext? = nil
  private var channel: (any Channel)? = nil
  private(set) var allocator = ByteBufferAllocator()
  private var connection: HTTP2ServerConnection? = nil
  private var isClosing = false

  init(
    configuration: ServerConfiguration, router: Router, logger: Logger, sendBudget: SendBufferBudget,
    admission: CallAdmission
  ) {
    self.admission = admission
    self.configuration = configuration
    self.router = router
    self.logger = logger
    self.sendBudget = sendBudget
  }

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
    self.channel = context.channel
    self.allocator = context.channel.allocator
    var logger = self.logger
    if let remote = context.channel.remoteAddress { logger[metadataKey: "peer"] = "\(remote)" }
    let connection = HTTP2ServerConnection(
      configuration: configuration, router: router, eventLoop: context.eventLoop, logger: logger, output: self,
      sendBudget: sendBudget, admission: admission)
    self.connection = connection
    if context.channel.isActive { connection.start() }
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    connection?.close()
    connection = nil
    self.context = nil
    self.channel = nil
  }

  func channelActive(context: ChannelHandlerContext) {
    connection?.start()
    context.fireChannelActive()
  }

  func channelInactive(context: ChannelHandlerContext) {
    connection?.close()
    context.fireChannelInactive()
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard let connection else { return }
    if !connection.peerChecked {
      // The first bytes through TLS come after its handshake: the client's certificate, if any,
      // is known now, and stays the connection's.
      connection.peerChecked = true
      if let tls = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self),
        let certificate = tls.peerCertificate
      {
        connection.peerCommonName = certificate.subjectName.first { $0.type == .commonName }?.value
      }
    }
    connection.beginReadBatch()
    connection.receive(unwrapInboundIn(data))
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    connection?.endReadBatch()
    context.fireChannelReadComplete()
  }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    // While the socket's send buffer is full, frames stay queued in nghttp2, whose own limits
    // then catch a peer that floods us with requests for replies it never reads.
    connection?.isOutputWritable = context.channel.isWritable
    if context.channel.isWritable { connection?.flush() }
    context.fireChannelWritabilityChanged()
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if event is ChannelShouldQuiesceEvent {
      connection?.beginGracefulShutdown()
    } else {
      context.fireUserInboundEventTriggered(event)
    }
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    logger.debug("connection error", metadata: ["error": "\(error)"])
    closeConnection()
  }

  // MARK: ConnectionOutput

  func write(_ bytes: ByteBuffer) {
    context?.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
  }

  /// Closes once what was written has left (a GOAWAY, last trailers), or after a second if the
  /// client does not read it.
  func closeConnection() {
    guard !isClosing, let context else { return }
    isClosing = true
    let written = context.eventLoop.makePromise(of: Void.self)
    context.writeAndFlush(wrapOutboundOut(allocator.buffer(capacity: 0)), promise: written)
    let loop = context.eventLoop.assumeIsolated()
    let giveUp = loop.scheduleTask(in: .seconds(1)) { context.close(promise: nil) }
    written.futureResult.assumeIsolated().whenComplete { _ in
      giveUp.cancel()
      context.close(promise: nil)
    }
  }
}
