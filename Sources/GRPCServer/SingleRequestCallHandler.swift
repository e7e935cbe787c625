/// Unary and server-streaming calls: waits for the one request message and the client's
/// half-close, then runs the method body. A second message, or none, ends the call.
final class SingleRequestCallHandler: ServerCallHandler {
  private let call: ServerCall
  private let body: @Sendable (ServerCall, [UInt8]) -> Void
  private var request: [UInt8]? = nil

  init(call: ServerCall, body: @escaping @Sendable (ServerCall, [UInt8]) -> Void) {
    self.call = call
    self.body = body
  }

  func didReceive(_ message: [UInt8]) {
    guard request == nil else {
      call.finish(Status(.unimplemented, "\(call.path) takes exactly one request message; received a second"))
      return
    }
    request = message
  }

  func didReceiveEnd() {
    guard let request else {
      call.finish(Status(.internal, "\(call.path) takes exactly one request message; the client sent none"))
      return
    }
    self.request = nil
    body(call, request)
  }
}
