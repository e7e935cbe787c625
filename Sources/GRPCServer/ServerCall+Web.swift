/// What a gRPC-Web or Connect call keeps beyond a gRPC call's state.
final class WebCallState {
  /// The browser origin allowed to read the response (CORS), for calls from allowed pages.
  let corsOrigin: String?
  /// A Connect unary request's body, gathered until the request ends.
  var unaryRequestBody: [UInt8] = []
  /// A gRPC-Web text request's base64 digits not yet decoded.
  var pendingBase64 = Base64Stream()

  init(corsOrigin: String?) {
    self.corsOrigin = corsOrigin
  }
}

/// How a gRPC-Web or Connect call frames what the handler sends: the handler's protobuf messages
/// and status are the same as for gRPC; only the bytes on the stream differ.
extension ServerCall {
  func sendWeb(_ message: UnsafeRawBufferPointer, compress: Bool, inputArrivedAt: UInt64) {
    var json: [UInt8]? = nil
    if wire.isJSON {
      guard let codec = connection.web?.codec else { return }
      do {
        json = try codec.responseJSON(fromMessage: Array(message), path: path)
      } catch {
        finish(Status(.internal, "could not write the response message as JSON: \(error.message)"))
        return
      }
    }
    if wire.isConnectUnary {
      // The bare message is the whole body; its headers wait for the status (see finishWeb).
      let before = outbound.count
      if let json { outbound.append(contentsOf: json) } else { outbound.append(contentsOf: message) }
      connection.queued(outbound.count - before)
      hasQueuedMessage = true
      if oldestUnsentInputAt == 0 { oldestUnsentInputAt = inputArrivedAt }
      return
    }
    let isFirstMessage = !hasQueuedMessage
    hasQueuedMessage = true
    if oldestUnsentInputAt == 0 { oldestUnsentInputAt = inputArrivedAt }
    if !responseHeadersSubmitted { submitResponseHeaders() }
    if outboundReadIndex > 0 && outboundReadIndex >= outbound.count / 2 {
      outbound.removeSubrange(0..<outboundReadIndex)
      outboundReadIndex = 0
    }
    let start = outbound.count
    if let json {
      json.withUnsafeBytes { MessageFramer.frame($0, compressed: false, into: &outbound) }
    } else if compress && responseEncoding != .identity && wire.isGRPCWeb {
      let compressed = Zlib.compress(message, gzip: responseEncoding == .gzip)
      compressed.withUnsafeBytes { MessageFramer.frame($0, compressed: true, into: &outbound) }
    } else {
      MessageFramer.frame(message, compressed: false, into: &outbound)
    }
    queueWebBytes(from: start, flushingNow: isFirstMessage && sendsFirstMessageAtOnce)
  }

  /// Ends a web call: its status goes in the body, as each protocol says.
  func finishWeb(_ status: Status, trailers: Metadata) {
    switch wire {
    case .grpc:
      return
    case .grpcWeb, .grpcWebText:
      if !responseHeadersSubmitted { submitResponseHeaders() }
      let start = outbound.count
      let block = Array(WebTrailers.grpcWebBlock(status, trailers: trailers).utf8)
      block.withUnsafeBytes { MessageFramer.frame($0, compressed: false, into: &outbound) }
      outbound[start] = 0x80  // the flag that marks the trailers frame
      queueWebBytes(from: start, flushingNow: false)
    case .connectStreamProto, .connectStreamJSON:
      if !responseHeadersSubmitted { submitResponseHeaders() }
      let start = outbound.count
      ConnectError.endStreamMessage(status, trailers: trailers).withUnsafeBytes {
        MessageFramer.frame($0, compressed: false, into: &outbound)
      }
      outbound[start] = 0x02  // Connect's end-of-stream flag
      queueWebBytes(from: start, flushingNow: false)
    case .connectUnaryProto, .connectUnaryJSON:
      responseHeadersSubmitted = true
      var block = HeaderBlock()
      if status.code == .ok {
        block.add(":status", "200")
        block.add("content-type", wire.responseContentType)
      } else {
        // An error replaces whatever message the handler sent first.
        let dropped = bufferedBytes
        outbound.removeAll()
        outboundReadIndex = 0
        if dropped > 0 { connection.drained(dropped, by: self) }
        outbound.append(contentsOf: ConnectError.json(status, trailers: trailers))
        connection.queued(outbound.count)
        block.add(":status", String(ConnectError.httpStatus(status.code)))
        block.add("content-type", "application/json")
      }
      addCORSHeaders(to: &block)
      block.add(initialMetadata)
      // Connect unary has no trailers: trailing metadata travels as `trailer-` headers.
      for entry in trailers where entry.key != ConnectError.detailsKey {
        switch entry.value {
        case .string(let text): block.add("trailer-" + entry.key, text)
        case .binary(let bytes): block.add("trailer-" + entry.key, Base64.encode(bytes))
        }
      }
      connection.submitResponse(for: self, block: &block)
    }
    pendingTrailers = .endOfBody
    connection.resumeData(for: self)
  }

  /// A web request refused before any handler ran: counted as a call, answered in its protocol.
  func rejectWeb(_ request: RequestHead.WebRequest, status: Status) {
    wire = request.wire
    web = WebCallState(corsOrigin: connection.web?.allowedOrigin(request.origin))
    statistics?.callStarted()
    isCounted = true
    finish(status)
  }

  func submitWebResponseHeaders() {
    var block = HeaderBlock()
    block.add(":status", "200")
    block.add("content-type", wire.responseContentType)
    if wire.isGRPCWeb {
      if responseEncoding != .identity { block.add("grpc-encoding", responseEncoding.rawValue) }
      block.add("grpc-accept-encoding", CompressionAlgorithm.acceptEncodingHeader)
    }
    addCORSHeaders(to: &block)
    block.add(initialMetadata)
    connection.submitResponse(for: self, block: &block)
  }

  private func addCORSHeaders(to block: inout HeaderBlock) {
    guard let corsOrigin = web?.corsOrigin else { return }
    block.add("access-control-allow-origin", corsOrigin)
    block.add("vary", "origin")
    var exposed = WebTrailers.exposedHeaders
    for entry in initialMetadata { exposed += ", " + entry.key }
    block.add("access-control-expose-headers", exposed)
  }

  /// Counts bytes framed into `outbound` from `start`, turning them into base64 first for
  /// gRPC-Web text (each piece padded on its own, which its clients decode), and sends them.
  private func queueWebBytes(from start: Int, flushingNow: Bool) {
    if wire == .grpcWebText {
      let encoded = Base64.encodeBytes(outbound[start...], padded: true)
      outbound.replaceSubrange(start..., with: encoded)
    }
    connection.queued(outbound.count - start)
    activityTick = connection.tick
    _ = isWritable  // registers for `onWritable` when this send filled the buffer
    connection.resumeData(for: self, flushingNow: flushingNow)
  }
}
