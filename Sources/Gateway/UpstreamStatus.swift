import GRPCServer
import ProtoJSON
import VLLMClient

/// How an upstream failure ends a gRPC call: the status google.rpc.Code gives its HTTP status,
/// vLLM's message, and a google.rpc.Status with an ErrorInfo in `grpc-status-details-bin`
/// carrying vLLM's error type, param and HTTP status.
enum UpstreamStatus {
  static func code(forHTTPStatus status: Int) -> Status.Code {
    switch status {
    case 400, 422: .invalidArgument
    case 401: .unauthenticated
    case 403: .permissionDenied
    case 404: .notFound
    case 408: .deadlineExceeded
    case 409: .aborted
    case 413, 429: .resourceExhausted
    case 499: .cancelled
    case 501: .unimplemented
    case 502, 503: .unavailable
    case 504: .deadlineExceeded
    case 400..<500: .failedPrecondition
    default: .internal
    }
  }

  /// A call the gateway's limit on upstream requests in flight turned away: nothing reached vLLM.
  static func refused(_ refusal: AdmissionRefusal) -> Status {
    switch refusal {
    case .connectionFull(let limit):
      Status(
        .resourceExhausted,
        "this connection already has \(limit) requests in flight to vLLM, the gateway's limit per connection "
          + "(--max-upstream-requests-per-connection); retry when one has finished")
    case .serverFull(let limit):
      Status(
        .resourceExhausted,
        "the gateway already has \(limit) requests in flight to vLLM, its limit (--max-upstream-requests); retry later")
    }
  }

  static func error(_ error: VLLMError) -> StatusError {
    let code: Status.Code
    switch error.kind {
    case .timeout: code = .deadlineExceeded
    case .connectionFailed: code = error.httpStatus == 499 ? .cancelled : .unavailable
    case .malformed, .stalled: code = .unavailable
    case .upstream: code = Self.code(forHTTPStatus: error.httpStatus)
    }
    var message = error.message.isEmpty ? "vLLM answered HTTP \(error.httpStatus)" : error.message
    if error.kind == .stalled { message += " (the gateway's --upstream-stall-timeout)" }
    message = StatusText.shortened(message)
    var trailers = Metadata()
    trailers.add("grpc-status-details-bin", binary: details(code: code, message: message, error: error))
    return StatusError(code, message, trailers: trailers)
  }

  /// A model no upstream of the fleet serves: NOT_FOUND with an ErrorInfo (reason
  /// MODEL_NOT_FOUND, domain vllm-grpc-gateway) naming the model and the ones served.
  static func unknownModel(_ model: String, served: [String]) -> StatusError {
    let model = StatusText.shortened(model, to: StatusText.mostValueBytes)
    let message = StatusText.shortened(
      "no upstream serves the model `\(model)`; the models served are: \(served.joined(separator: ", "))")
    var trailers = Metadata()
    trailers.add(
      "grpc-status-details-bin",
      binary: statusWithErrorInfo(
        code: .notFound, message: message, reason: "MODEL_NOT_FOUND", domain: "vllm-grpc-gateway",
        metadata: [("model", model), ("served_models", served.joined(separator: ","))]))
    return StatusError(.notFound, message, trailers: trailers)
  }

  /// A serialized google.rpc.Status whose one detail is a google.rpc.ErrorInfo.
  static func details(code: Status.Code, message: String, error: VLLMError) -> [UInt8] {
    var metadata: [(String, String)] = [("http_status", String(error.httpStatus))]
    if let type = error.type { metadata.append(("type", type)) }
    if let param = error.param { metadata.append(("param", param)) }
    metadata.append(("code", String(error.httpStatus)))
    return statusWithErrorInfo(
      code: code, message: message, reason: reason(for: error), domain: "vllm", metadata: metadata)
  }

  static func statusWithErrorInfo(
    code: Status.Code, message: String, reason: String, domain: String, metadata: [(String, String)]
  ) -> [UInt8] {
    var info = ProtoWireWriter()
    info.lengthDelimited(1, Array(reason.utf8))
    info.lengthDelimited(2, Array(domain.utf8))
    for (key, value) in metadata {
      let entry = info.begin(3)
      info.lengthDelimited(1, Array(key.utf8))
      info.lengthDelimited(2, Array(StatusText.shortened(value).utf8))
      info.end(entry)
    }
    var status = ProtoWireWriter()
    status.tag(1, .varint)
    status.varint(UInt64(code.rawValue))
    status.lengthDelimited(2, Array(message.utf8))
    let any = status.begin(3)
    status.lengthDelimited(1, Array("type.googleapis.com/google.rpc.ErrorInfo".utf8))
    status.lengthDelimited(2, info.bytes)
    status.end(any)
    return status.bytes
  }

  /// ErrorInfo reasons are UPPER_SNAKE_CASE: "NotFoundError" becomes "NOT_FOUND_ERROR".
  static func reason(for error: VLLMError) -> String {
    guard let type = error.type, !type.isEmpty else {
      switch error.kind {
      case .timeout: return "UPSTREAM_TIMEOUT"
      case .connectionFailed: return "UPSTREAM_UNAVAILABLE"
      case .malformed: return "UPSTREAM_MALFORMED"
      case .stalled: return "UPSTREAM_STALLED"
      case .upstream: return "UPSTREAM_HTTP_\(error.httpStatus)"
      }
    }
    var out = ""
    var previousWasLower = false
    for character in type {
      if character.isUppercase && previousWasLower { out.append("_") }
      if character == " " || character == "-" || character == "." {
        out.append("_")
        previousWasLower = false
        continue
      }
      out.append(contentsOf: character.uppercased())
      previousWasLower = character.isLowercase || character.isNumber
    }
    return out
  }
}

extension VLLMError {
  /// The upstream has no such route: FastAPI's 404 {"detail": "Not Found"}, 405 or 501, none of
  /// which carry vLLM's error type (an unknown model's 404 does).
  var isMissingRoute: Bool {
    kind == .upstream && type == nil && [404, 405, 501].contains(httpStatus)
  }
}
