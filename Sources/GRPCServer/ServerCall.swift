import CNGHTTP2
import NIOCore

/// One gRPC call: the request's metadata and deadline, and the response side. It belongs to its
/// connection's event loop; use it only there. Once the call has finished or been cancelled,
/// further sends and finishes are ignored, so handlers need not race the client.
public final class ServerCall {
  /// The method, `/package.Service/Method`.
  public private(set) var path = ""
  /// Request metadata, without pseudo-headers and the headers gRPC itself interprets.
  public private(set) var metadata = Metadata()
  /// When the client's `grpc-timeout` runs out, if it sent one.
  public private(set) var deadline: NIODeadline? = nil
  public let eventLoop: any EventLoop
  /// The encoding response messages are sent in; defaults to the request's when the client
  /// accepts it. Change it before the first message.
  public var responseEncoding = CompressionAlgorithm.identity
  /// The client's `grpc-accept-encoding` list, if it sent one.
  public private(set) var acceptedEncodings: String? = nil
  /// Called once if the call ends before the handler finishes it.
  public var onCancel: ((CancellationReason) -> Void)? = nil
  /// Called when a send buffer that was over the high watermark has drained below half of it.
  public var onWritable: (() -> Void)? = nil
  /// Whether the first response message leaves at once rather than with the other output of
  /// the event loop's turn, where it would wait for the rest of that turn's work: for streams
  /// whose first message is what the client waits for (a first token). Costs a write per call.
  public var sendsFirstMessageAtOnce = false
  /// Who the call is from, as the service's gate established it (a client key, say). An object:
  /// casting it back to its class is a pointer compare, where a cast from `any Sendable` went
  /// through the runtime's generic cast (about 150 instructions a call, callgrind).
  public var clientIdentity: (any AnyObject & Sendable)? = nil
  /// The common name of the certificate the client presented (mTLS); nil without one.
  public var peerCertificateCommonName: String? { connection.peerCommonName }
  /// What the service keeps with the call for its own accounting, told when the call ends.
  public var account: (any CallAccount)? = nil
  /// What the service keeps with the call's connection, shared by all its calls (the client key
  /// it already checked, say). Read and written on the connection's event loop.
  public var connectionContext: AnyObject? {
    get { connection.serviceContext }
    set { connection.serviceContext = newValue }
  }
  /// Whether `account` heard of the end.
  private var accountTold = false
  /// Whether the request message just delivered arrived compressed.
  public internal(set) var lastMessageWasCompressed = false
  /// True once the handler finished the call or it was cancelled.
  public private(set) var isFinished = false
  /// When the client half-closed (monotonic nanoseconds, as `NIODeadline.uptimeNanoseconds`),
  /// if the server keeps statistics; 0 otherwise.
  public private(set) var requestEndedAt: UInt64 = 0

  let streamID: Int32
  private(set) var requestEncoding = CompressionAlgorithm.identity
  /// The protocol the call speaks: gRPC, or gRPC-Web or Connect (see ServerCall+Web.swift).
  var wire = WireProtocol.grpc
  /// What only gRPC-Web and Connect calls keep; nil for gRPC, whose calls carry one pointer for it.
  var web: WebCallState? = nil
  // SAFETY of the C boundary: the connection outlives every unfinished call (closing it cancels
  // them all), and a finished call never touches it, so the reference needs no counting.
  private let unownedConnection: Unmanaged<HTTP2ServerConnection>
  var connection: HTTP2ServerConnection { unownedConnection.takeUnretainedValue() }
  private let sendBufferHighWatermark: Int
  let statistics: CallStatistics?
  /// Whether the statistics counted this call's start (streams reset before their headers
  /// completed never started a call).
  var isCounted = false
  // The hot per-stream state below is touched only on the connection's event loop, one access at
  // a time; the runtime's exclusivity bookkeeping for it cost several percent of a call.
  var handler: (any ServerCallHandler)? = nil
  /// For unary and server-streaming methods, in place of a handler: the method body, and the
  /// request message until the client half-closes.
  var singleRequestBody: (@Sendable (ServerCall, [UInt8]) -> Void)? = nil
  private var singleRequest: [UInt8]? = nil
  @exclusivity(unchecked) var deframer: MessageDeframer
  var deadlineTimer: Scheduled<Void>? = nil

  // Response side. `outbound` holds framed messages not yet taken by nghttp2's data source.
  var responseHeadersSubmitted = false
  @exclusivity(unchecked) var outbound: [UInt8] = []
  var outboundReadIndex = 0
  /// Trailers waiting for the queued messages to drain: the shared `grpc-status: 0`, or a block.
  enum PendingTrailers {
    case ok
    case custom(HeaderBlock)
    /// No trailers: the body ends the stream (gRPC-Web and Connect carry the status in it).
    case endOfBody
  }
  var pendingTrailers: PendingTrailers? = nil
  var isDataDeferred = false
  /// For the latency statistics: when the input behind the oldest message not yet taken by
  /// nghttp2 arrived (0: unknown), how long the request took to be forwarded, and whether a
  /// message has gone out yet.
  var oldestUnsentInputAt: UInt64 = 0
  var requestForwardNanoseconds: UInt64? = nil
  var hasSentMessage = false
  var hasQueuedMessage = false
  var wasOverHighWatermark = false
  var remoteClosed = false
  /// The request's `content-length` (-1 when it gave none), and the DATA received against it.
  var declaredContentLength = -1
  var receivedContentLength = 0
  /// The server reset the stream because the request broke HTTP/2's rules.
  var wasResetAsMalformed = false
  /// The connection's housekeeping tick when bytes last moved for this call either way.
  var activityTick = 0
  /// Where the connection's open calls keep this one (see `OpenCalls`); -1 when not there.
  var openCallsIndex = -1
  /// The status this call ended with, until the client has been sent it (then it is counted as
  /// such) or the stream closes without it (then it counts as CANCELLED).
  private var uncountedEnd: Status.Code? = nil
  private var isAdmitted = false
  var initialMetadata = Metadata()

  /// A stream whose request headers have begun to arrive.
  init(streamID: Int32, connection: HTTP2ServerConnection) {
    self.streamID = streamID
    self.unownedConnection = Unmanaged.passUnretained(connection)
    self.eventLoop = connection.eventLoop
    self.deframer = MessageDeframer(maximumMessageSize: connection.configuration.maximumReceiveMessageSize)
    self.sendBufferHighWatermark = connection.configuration.callSendBufferHighWatermark
    self.statistics = connection.configuration.statistics
  }

  /// The headers passed the checks: the stream becomes a call.
  func accept(_ accepted: RequestHead.Accepted) {
    statistics?.callStarted()
    isCounted = true
    path = accepted.path
    metadata = accepted.metadata
    requestEncoding = accepted.requestEncoding
    responseEncoding = accepted.responseEncoding
    acceptedEncodings = accepted.acceptedEncodings
    deadline = accepted.timeout.map { .now() + $0.duration }
    if let request = accepted.web {
      wire = request.wire
      web = WebCallState(corsOrigin: connection.web?.allowedOrigin(request.origin))
    }
  }

  /// Takes one of the places the server's admission limits allow (see `CallAdmission`), held
  /// until the call ends; nil when admitted, else why not. For calls that put work elsewhere.
  public func admit() -> AdmissionRefusal? {
    guard !isAdmitted, !isFinished else { return nil }
    guard connection.admittedCalls < connection.admittedCallsLimit else {
      return .connectionFull(limit: connection.admittedCallsLimit)
    }
    guard connection.admission.take() else { return .serverFull(limit: connection.admission.limit) }
    connection.admittedCalls += 1
    isAdmitted = true
    return nil
  }

  /// Counts the call's end once its stream has carried it to the client (`delivered`) or closed
  /// without it: the statistics say what the client got, not what the handler meant to send.
  func countEnd(delivered: Bool) {
    guard let code = uncountedEnd else { return }
    uncountedEnd = nil
    if isCounted { statistics?.callFinished(delivered ? code : .cancelled) }
    if let account, !accountTold {
      accountTold = true
      account.callEnded(delivered ? code : .cancelled)
    }
  }

  /// Forgets queued response bytes that can no longer reach the client.
  func discardOutbound() {
    outbound.removeAll()
    outboundReadIndex = 0
  }

  /// The headers failed the checks and the rejection has been sent: nothing more happens here.
  /// A request that was no call (a CORS preflight) has been answered.
  func markAnswered() {
    isFinished = true
  }

  func markRejected(_ status: Status) {
    isFinished = true
    statistics?.callStarted()
    statistics?.callFinished(status.code)
  }

  /// Bytes queued for this call that the client has not yet been sent.
  public var bufferedBytes: Int { outbound.count - outboundReadIndex }

  /// False while more than the configured high watermark is buffered for a slow reader, on this
  /// call or over the whole connection; `onWritable` is called once there is room again.
  public var isWritable: Bool {
    guard !isFinished else { return false }
    // Borrowed without a retain (see `unownedConnection`): two retains and releases a chunk before.
    if bufferedBytes < sendBufferHighWatermark
      && unownedConnection._withUnsafeGuaranteedRef({ $0.hasSendBufferRoom })
    {
      return true
    }
    if !wasOverHighWatermark {
      wasOverHighWatermark = true
      connection.waitForWritable(self)
    }
    return false
  }

  /// Adds metadata to the response headers; call before the first message.
  public func addInitialMetadata(_ metadata: Metadata) {
    for entry in metadata { initialMetadata.append(entry) }
  }

  /// Sends the response headers now, before any message.
  public func sendInitialMetadata() {
    guard !isFinished, !responseHeadersSubmitted, !wire.isConnectUnary else { return }
    submitResponseHeaders()
  }

  /// Queues one response message, compressed in `responseEncoding` when `compress` allows.
  /// `inputArrivedAt` (monotonic nanoseconds), when the handler knows it, is when the input this
  /// message answers arrived: the statistics' message delay runs from there.
  public func send(_ message: [UInt8], compress: Bool = true, inputArrivedAt: UInt64 = 0) {
    message.withUnsafeBytes { send(bytes: $0, compress: compress, inputArrivedAt: inputArrivedAt) }
  }

  public func send(bytes message: UnsafeRawBufferPointer, compress: Bool = true, inputArrivedAt: UInt64 = 0) {
    guard !isFinished else { return }
    if wire != .grpc {
      sendWeb(message, compress: compress, inputArrivedAt: inputArrivedAt)
      return
    }
    let isFirstMessage = noteMessageQueued(inputArrivedAt: inputArrivedAt)
    let queuedBefore = outboundForNextMessage()
    if compress && responseEncoding != .identity {
      let compressed = Zlib.compress(message, gzip: responseEncoding == .gzip)
      compressed.withUnsafeBytes { MessageFramer.frame($0, compressed: true, into: &outbound) }
    } else {
      MessageFramer.frame(message, compressed: false, into: &outbound)
    }
    didQueue(since: queuedBefore, isFirstMessage: isFirstMessage)
  }

  /// Queues one response message that `write` appends to the array it is given, framed in
  /// place: a handler that makes its messages (the gateway's translation) writes them straight
  /// into the call's output, with no buffer of its own and no copy. The message starts at the
  /// index `write` is given; it returns false to take back what it wrote (nothing is sent), and
  /// what it wrote before throwing is taken back too. A compressed message, or one of a call that
  /// is not plain gRPC, is made apart and then sent as `send` does.
  /// - Returns: what `write` returned.
  @discardableResult
  public func send(
    inputArrivedAt: UInt64 = 0, writing write: (_ output: inout [UInt8], _ start: Int) throws -> Bool
  ) rethrows -> Bool {
    guard !isFinished else { return false }
    if wire != .grpc || responseEncoding != .identity {
      var message: [UInt8] = []
      guard try write(&message, 0) else { return false }
      send(message, inputArrivedAt: inputArrivedAt)
      return true
    }
    let queuedBefore = outboundForNextMessage()
    // The frame's header (uncompressed, then the length), its length filled in below. Five
    // zeros written in place: appending a constant array cost a retain, a release and a memcpy
    // call per message.
    outbound.append(addingCapacity: 5) { header in header.append(repeating: 0, count: 5) }
    let start = outbound.count
    let kept: Bool
    do {
      kept = try write(&outbound, start)
    } catch {
      outbound.removeSubrange(queuedBefore...)
      throw error
    }
    guard kept else {
      outbound.removeSubrange(queuedBefore...)
      return false
    }
    let length = UInt32(truncatingIfNeeded: outbound.count - start)
    outbound[queuedBefore + 1] = UInt8(truncatingIfNeeded: length >> 24)
    outbound[queuedBefore + 2] = UInt8(truncatingIfNeeded: length >> 16)
    outbound[queuedBefore + 3] = UInt8(truncatingIfNeeded: length >> 8)
    outbound[queuedBefore + 4] = UInt8(truncatingIfNeeded: length)
    let isFirstMessage = noteMessageQueued(inputArrivedAt: inputArrivedAt)
    didQueue(since: queuedBefore, isFirstMessage: isFirstMessage)
    return true
  }

  /// Notes a message queued, sending the response headers before the first; true for the first.
  private func noteMessageQueued(inputArrivedAt: UInt64) -> Bool {
    let isFirstMessage = !hasQueuedMessage
    hasQueuedMessage = true
    if oldestUnsentInputAt == 0 { oldestUnsentInputAt = inputArrivedAt }
    if !responseHeadersSubmitted { submitResponseHeaders() }
    return isFirstMessage
  }

  /// Makes `outbound` ready for another message (dropping what was sent once that is half of
  /// it, or taking a spare buffer); returns where the message will start.
  private func outboundForNextMessage() -> Int {
    if outboundReadIndex > 0 && outboundReadIndex >= outbound.count / 2 {
      outbound.removeSubrange(0..<outboundReadIndex)
      outboundReadIndex = 0
    }
    if outbound.capacity == 0, let spare = connection.spareOutbound.popLast() { outbound = spare }
    return outbound.count
  }

  /// Counts what was queued from `queuedBefore` on and has the connection send it.
  private func didQueue(since queuedBefore: Int, isFirstMessage: Bool) {
    unownedConnection._withUnsafeGuaranteedRef { connection in
      connection.queued(outbound.count - queuedBefore)
      activityTick = connection.tick
      _ = isWritable  // registers for `onWritable` when this send filled the buffer
      connection.resumeData(for: self, flushingNow: isFirstMessage && sendsFirstMessageAtOnce)
    }
  }

  /// Sends one message and finishes with OK: the whole answer of a unary call.
  public func respond(_ message: [UInt8], trailers: Metadata = Metadata(), inputArrivedAt: UInt64 = 0) {
    send(message, inputArrivedAt: inputArrivedAt)
    finish(.ok, trailers: trailers)
  }

  /// Ends the call with `status`. Before any message this is a Trailers-Only response.
  public func finish(_ status: Status, trailers: Metadata = Metadata()) {
    guard !isFinished else { return }
    end(counting: status.code)
    if wire != .grpc {
      finishWeb(status, trailers: trailers)
      return
    }
    if !responseHeadersSubmitted {
      responseHeadersSubmitted = true
      var block = HeaderBlock()
      block.add(":status", "200")
      block.add("content-type", "application/grpc")
      block.add(initialMetadata)
      block.addStatus(status)
      block.add(trailers)
      connection.submitTrailersOnly(for: self, block: &block)
    } else {
      if status.code == .ok && status.message.isEmpty && trailers.isEmpty {
        pendingTrailers = .ok
      } else {
        var block = HeaderBlock()
        block.addStatus(status)
        block.add(trailers)
        pendingTrailers = .custom(block)
      }
      connection.resumeData(for: self)
    }
  }

  public func finish(_ error: StatusError) {
    finish(error.status, trailers: error.trailers)
  }

  /// Ends the call because of something outside the handler's control and tells the handler.
  func cancel(_ reason: CancellationReason) {
    guard !isFinished else { return }
    let onCancel = self.onCancel
    end(counting: .cancelled)
    onCancel?(reason)
  }

  /// What every ending does: count it, stop the deadline, and let go of the handler and the
  /// closures (which breaks their cycles back to this call).
  func end(counting code: Status.Code) {
    isFinished = true
    if isCounted || account != nil { uncountedEnd = code }
    if isAdmitted {
      isAdmitted = false
      connection.admittedCalls -= 1
      connection.admission.release()
    }
    deadlineTimer?.cancel()
    deadlineTimer = nil
    handler = nil
    singleRequestBody = nil
    singleRequest = nil
    onWritable = nil
    onCancel = nil
  }

  func submitResponseHeaders() {
    responseHeadersSubmitted = true
    if wire != .grpc {
      submitWebResponseHeaders()
      return
    }
    if responseEncoding == .identity && initialMetadata.isEmpty {
      connection.submitResponse(for: self, headers: StaticHeaders.response)
      return
    }
    var block = HeaderBlock()
    block.add(":status", "200")
    block.add("content-type", "application/grpc")
    if responseEncoding != .identity { block.add("grpc-encoding", responseEncoding.rawValue) }
    block.add("grpc-accept-encoding", CompressionAlgorithm.acceptEncodingHeader)
    block.add(initialMetadata)
    connection.submitResponse(for: self, block: &block)
  }
}

extension ServerCall {
  /// Starts the call the route describes.
  func start(_ kind: Route.Kind) {
    switch kind {
    case .singleRequest(let body): singleRequestBody = body
    case .streaming(let makeHandler): handler = makeHandler(self)
    }
  }

  /// One complete request message.
  func receive(_ message: [UInt8]) {
    guard singleRequestBody != nil else {
      handler?.didReceive(message)
      return
    }
    guard singleRequest == nil else {
      finish(Status(.unimplemented, "\(path) takes exactly one request message; received a second"))
      return
    }
    singleRequest = message
  }

  /// The handler handed the request on (for a proxy: wrote it to its upstream socket) at
  /// `time` (monotonic nanoseconds); recorded in the statistics' request forward delay.
  public func requestForwarded(at time: UInt64) {
    guard requestEndedAt != 0, requestForwardNanoseconds == nil, time >= requestEndedAt else { return }
    let delay = time - requestEndedAt
    requestForwardNanoseconds = delay
    statistics?.requestForwardDelay.observe(nanoseconds: delay)
  }

  /// Records how long the message nghttp2 is taking now waited since its input arrived.
  func messageLeaving(at time: UInt64) {
    guard let statistics else { return }
    if oldestUnsentInputAt != 0 {
      let delay = time >= oldestUnsentInputAt ? time - oldestUnsentInputAt : 0
      statistics.messageDelay.observe(nanoseconds: delay)
      if !hasSentMessage, let forward = requestForwardNanoseconds {
        statistics.firstMessageAddedDelay.observe(nanoseconds: forward + delay)
      }
      oldestUnsentInputAt = 0
    }
    hasSentMessage = true
  }

  /// The client half-closed.
  func receiveEnd() {
    // Only the latency statistics need the time; a clock read per call is not free.
    if statistics != nil { requestEndedAt = NIODeadline.now().uptimeNanoseconds }
    guard let body = singleRequestBody else {
      handler?.didReceiveEnd()
      return
    }
    guard let request = singleRequest else {
      finish(Status(.internal, "\(path) takes exactly one request message; the client sent none"))
      return
    }
    singleRequestBody = nil
    singleRequest = nil
    body(self, request)
  }

  /// Ends the call with `status` because of something the handler did not do (a deadline, a
  /// protocol violation), and tells the handler through `onCancel`.
  func abort(_ status: Status, reason: CancellationReason) {
    guard !isFinished else { return }
    if reason == .protocolViolation { connection.glitch("call \(path): \(status.message)") }
    let onCancel = self.onCancel
    finish(status)
    onCancel?(reason)
  }
}
