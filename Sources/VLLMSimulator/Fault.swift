/// A failure a test asks the simulator for, in the request body's "vllm_sim" object (real vLLM
/// ignores unknown keys):
///
///     {"vllm_sim": {"fault": "stream_error", "after": 2, "status": 500, "message": "boom"}}
///
/// Faults: "http_error" (an error status with vLLM's error body; 401 uses vLLM's
/// {"error": "Unauthorized"} and 404 with "detail" its {"detail": "Not Found"}), "error_200" (HTTP
/// 200 whose body is an error object), "stream_error" (an error event after `after` chunks, then
/// [DONE], as vLLM does), "drop" (close the connection after `after` chunks), "stall" (stop
/// sending after `after` chunks and keep the connection open), "truncate" (end the response
/// cleanly after `after` chunks, with no [DONE]), "reset" (a TCP reset after `after` chunks),
/// "reset_before_head" (a TCP reset with the request unread, as a kernel sends for a socket closed
/// with data in it: not counted as a request), "drop_before_head" (the request is read, then the
/// connection closes cleanly with no answer, as when a server dies), "stall_before_head" (silence before
/// the status line), "malformed_json" (an event that is not JSON after `after` chunks),
/// "truncated_event" (half an event after `after` chunks, then a clean end of the response), and
/// "close_next" (answer normally, then close the connection when the next request arrives on it
/// without processing that one: a server closing an idle keep-alive connection just as a request
/// is written on it). The same object may set the pace of one request: "tokens_per_second" and
/// "ttft_ms". A fault `after` chunks marks a point of the generation: a continuation of the same
/// answer (see SimulatedRequest.continuedTokens) that starts beyond it does not meet it again.
struct Fault {
  enum Kind: String {
    case httpError = "http_error"
    case error200 = "error_200"
    case streamError = "stream_error"
    case drop
    case stall
    case truncate
    case detail
    case reset
    case resetBeforeHead = "reset_before_head"
    case dropBeforeHead = "drop_before_head"
    case stallBeforeHead = "stall_before_head"
    case malformedJSON = "malformed_json"
    case truncatedEvent = "truncated_event"
    case closeNext = "close_next"
  }

  var kind: Kind
  var after: Int
  var status: Int
  var message: String

  init?(_ object: Any?) {
    guard let object = object as? [String: Any], let name = object["fault"] as? String, let kind = Kind(rawValue: name)
    else { return nil }
    self.kind = kind
    after = object["after"] as? Int ?? 0
    status = object["status"] as? Int ?? 500
    message = object["message"] as? String ?? "simulated failure"
  }

  /// vLLM's error type for an HTTP status.
  static func errorType(for status: Int) -> String {
    switch status {
    case 400: "BadRequestError"
    case 401: "Unauthorized"
    case 403: "PermissionDeniedError"
    case 404: "NotFoundError"
    case 429: "RateLimitError"
    case 501: "NotImplementedError"
    case 503: "ServiceUnavailableError"
    default: status >= 500 ? "InternalServerError" : "BadRequestError"
    }
  }
}
