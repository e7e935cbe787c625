/// Receives one upstream response, on the event loop the request was started on.
public protocol VLLMResponseHandler: AnyObject {
  /// An event of an event-stream response (2xx with `text/event-stream`).
  func vllmEvent(_ event: ServerSentEvent)
  /// False while the handler cannot take more events; the client stops reading from vLLM (so
  /// TCP and vLLM slow down) until `VLLMCall.resume()`.
  var vllmWantsMore: Bool { get }
  /// The call is over: a JSON body, the end of an event stream, or a failure.
  func vllmFinished(_ outcome: VLLMOutcome)
}

/// How an upstream call ended.
public enum VLLMOutcome {
  /// A 2xx response that was not an event stream: its whole body and content type. A 200 whose
  /// body is vLLM's error object arrives as `.failed` instead.
  case body([UInt8], contentType: String)
  /// An event stream ended; `cleanly` is false when it stopped in the middle of an event.
  case streamEnded(cleanly: Bool)
  /// An error status, a connection failure, or a timeout.
  case failed(VLLMError)
}
