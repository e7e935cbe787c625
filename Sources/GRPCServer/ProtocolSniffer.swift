import Logging
import NIOCore
import NIOHTTP1

/// The first handler of a connection when the server also speaks to HTTP/1.1 clients: it reads
/// the first bytes, then puts the HTTP/2 handler or the HTTP/1.1 web pipeline in its place and
/// leaves. An HTTP/2 client's connection preface decides at once; anything else that starts like
/// an HTTP/1 request line goes to the web handler, and the rest to HTTP/2, which refuses it as
/// before.
final class ProtocolSniffer: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = ByteBuffer
  typealias InboundOut = ByteBuffer

  private static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
  private static let methods = [
    "POST ", "OPTIONS ", "GET ", "HEAD ", "PUT ", "DELETE ", "PATCH ", "CONNECT ", "TRACE ",
  ]
  .map { Array($0.utf8) }

  private let makeHTTP2Handler: () -> any ChannelHandler
  private let makeHTTP1Handler: () -> any ChannelHandler
  private let timeout: TimeAmount?
  private var buffered: ByteBuffer? = nil
  private var timer: Scheduled<Void>? = nil

  init(
    timeout: TimeAmount?, makeHTTP2Handler: @escaping () -> any ChannelHandler,
    makeHTTP1Handler: @escaping () -> any ChannelHandler
  ) {
    self.timeout = timeout
    self.makeHTTP2Handler = makeHTTP2Handler
    self.makeHTTP1Handler = makeHTTP1Handler
  }

  func handlerAdded(context: ChannelHandlerContext) {
    guard let timeout else { return }
    // A connection that never says what it speaks is closed, as one without a preface would be.
    timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { context.close(promise: nil) }
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    timer?.cancel()
    timer = nil
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    var bytes = unwrapInboundIn(data)
    if var pending = buffered {
      pending.writeBuffer(&bytes)
      bytes = pending
    }
    let view = bytes.readableBytesView
    guard let isHTTP1 = Self.speaksHTTP1(Array(view.prefix(Self.preface.count))) else {
      buffered = bytes
      return
    }
    buffered = nil
    do {
      let pipeline = context.pipeline.syncOperations
      if isHTTP1 {
        try pipeline.configureHTTPServerPipeline(
          position: .after(self), withPipeliningAssistance: true, withErrorHandling: true)
        try pipeline.addHandler(makeHTTP1Handler(), position: .last)
      } else {
        try pipeline.addHandler(makeHTTP2Handler(), position: .after(self))
      }
    } catch {
      context.close(promise: nil)
      return
    }
    context.fireChannelRead(wrapInboundOut(bytes))
    context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
  }

  /// True for HTTP/1, false for HTTP/2 (or anything else), nil while the bytes could still be
  /// either.
  static func speaksHTTP1(_ start: [UInt8]) -> Bool? {
    // `start` holds at most the preface's length: equal to it is HTTP/2, a prefix of it may be.
    if preface.starts(with: start) { return start.count == preface.count ? false : nil }
    for method in methods {
      if start.starts(with: method) { return true }
      if method.starts(with: start) { return nil }  // "POS" may still become "POST "
    }
    return false
  }
}
