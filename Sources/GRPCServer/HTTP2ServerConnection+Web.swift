import CNGHTTP2
import NIOCore

/// The request side of gRPC-Web and Connect calls, and CORS preflights.
extension HTTP2ServerConnection {
  /// Body bytes of a web call: base64 to decode first for gRPC-Web text, one bare message to
  /// gather for Connect unary, enveloped messages as in gRPC otherwise.
  func receiveWebBody(_ bytes: UnsafeRawBufferPointer, for call: ServerCall) {
    guard let state = call.web else { return }
    switch call.wire {
    case .grpcWebText:
      var decoded: [UInt8] = []
      do {
        try state.pendingBase64.decode(bytes, into: &decoded)
      } catch {
        // Broken framing, as a bad compression flag is: INTERNAL, as gRPC has it.
        call.abort(Status(.internal, "grpc-web-text request body is not base64"), reason: .protocolViolation)
        return
      }
      decoded.withUnsafeBytes { feed($0, to: call) }
    case .connectUnaryProto, .connectUnaryJSON:
      let limit = configuration.maximumReceiveMessageSize
      guard state.unaryRequestBody.count + bytes.count <= limit else {
        call.abort(
          Status(.resourceExhausted, "request message exceeds the limit of \(limit) bytes"),
          reason: .protocolViolation)
        return
      }
      state.unaryRequestBody.append(contentsOf: bytes)
    default:
      feed(bytes, to: call)
    }
  }

  /// The request of a web call ended: a Connect unary body becomes its one message now. False
  /// when the call ended here instead.
  func finishWebBody(of call: ServerCall) -> Bool {
    guard let state = call.web else { return true }
    if call.wire == .grpcWebText && state.pendingBase64.hasPartialGroup {
      call.abort(
        Status(.internal, "grpc-web-text request body ends inside a base64 group"),
        reason: .protocolViolation)
      return false
    }
    guard call.wire.isConnectUnary else { return true }
    let body = state.unaryRequestBody
    state.unaryRequestBody = []
    // Connect compresses a unary body as a whole: it is delivered as one message would be.
    deliver(MessageDeframer.Frame(isCompressed: call.requestEncoding != .identity, bytes: body), to: call)
    return !call.isFinished
  }

  /// A JSON request message, converted to the protobuf the handler expects.
  func receiveJSON(_ json: [UInt8], for call: ServerCall) {
    guard let codec = web?.codec else { return }
    do {
      call.receive(try codec.requestMessage(fromJSON: json, path: call.path))
    } catch {
      call.finish(Status(.invalidArgument, "request JSON: \(error.message)"))
    }
  }

  /// A browser asks whether its page may call: yes for allowed origins, with what they may send.
  func answerPreflight(_ call: ServerCall, origin: String?, requestedHeaders: String?) {
    call.markAnswered()
    var block = HeaderBlock()
    guard let web, let allowed = web.allowedOrigin(origin) else {
      block.add(":status", "403")
      block.add("content-type", "text/plain")
      submitHeadersEndingStream(call.streamID, block: &block)
      return
    }
    block.add(":status", "204")
    block.add("access-control-allow-origin", allowed)
    block.add("access-control-allow-methods", "POST")
    block.add(
      "access-control-allow-headers",
      requestedHeaders
        ?? "content-type, x-grpc-web, x-user-agent, grpc-timeout, connect-protocol-version, connect-timeout-ms")
    block.add("access-control-max-age", String(web.configuration.preflightMaxAgeSeconds))
    // Only actual answers need this, but clients that check the preflight find it here too.
    block.add("access-control-expose-headers", WebTrailers.exposedHeaders)
    block.add("vary", "origin")
    submitHeadersEndingStream(call.streamID, block: &block)
  }
}
