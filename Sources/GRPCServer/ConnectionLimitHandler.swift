import Atomics
import Logging
import NIOCore

/// On the listening channel: closes accepted connections beyond the limit at once, rather than
/// letting them queue for descriptors and event-loop time, and says so in the log at most once a
/// second. When accept itself fails (descriptors exhausted), NIO's AcceptBackoffHandler, ahead of
/// this one, pauses accepting for a second; this handler logs it.
final class ConnectionLimitHandler: ChannelInboundHandler {
  typealias InboundIn = any Channel
  typealias InboundOut = any Channel

  private let limit: Int
  private let open: ManagedAtomic<Int>
  private let logger: Logger
  private var lastWarningAt: NIODeadline = .uptimeNanoseconds(0)
  private var shedSinceWarning = 0

  init(limit: Int, open: ManagedAtomic<Int>, logger: Logger) {
    self.limit = limit
    self.open = open
    self.logger = logger
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let channel = unwrapInboundIn(data)
    guard open.loadThenWrappingIncrement(ordering: .relaxed) < limit else {
      open.wrappingDecrement(ordering: .relaxed)
      shedSinceWarning += 1
      warn("connection limit reached; closing new connections", ["limit": "\(limit)"])
      channel.close(promise: nil)
      return
    }
    let open = self.open
    channel.closeFuture.whenComplete { _ in open.wrappingDecrement(ordering: .relaxed) }
    context.fireChannelRead(data)
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    warn("accepting connections failed; backing off for a second", ["error": "\(error)"])
  }

  private func warn(_ message: Logger.Message, _ metadata: Logger.Metadata) {
    let now = NIODeadline.now()
    guard now - lastWarningAt >= .seconds(1) else { return }
    lastWarningAt = now
    var metadata = metadata
    if shedSinceWarning > 0 { metadata["closed"] = "\(shedSinceWarning)" }
    shedSinceWarning = 0
    logger.warning(message, metadata: metadata)
  }
}
