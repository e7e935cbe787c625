/// Receives one upstream response, on the event loop the request was started on.
public protocol VLLMResponseHandler: AnyObject {
  /// An event of an event-stream response (2xx with `text/event-stream`).
  func vllmEvent(_ event: ServerSentEvent)
  /// An unnamed event that arrived whole in one read, its data borrowed where it lies in that
  /// read, for this call only: true when the handler took it, false to have it again as
  /// `vllmEvent(_:)`, copied. A streamed chat chunk's data was copied into the event (about 200
  /// instructions a chunk, callgrind) only to be translated from there; a handler that can
  /// translate it in place skips the copy. Optional; a handler that declines gets the event again,
  /// next, and must not have acted on it (sent, counted or noted it) in a way the copy repeats.
  ///
  /// The data is the value of the event's `data:` line only if it holds no CR or LF: an HTTP
  /// chunk that looks like one whole event is offered without being searched for line breaks
  /// (`ServerSentEventParser.wholeEventValue`). Take only data known to hold none, as data that
  /// matches bytes kept from earlier events, with plain JSON text between, is; declined, it
  /// comes as the events it really holds.
  func vllmEvent(borrowing data: Span<UInt8>, receivedAt: UInt64) -> Bool
  /// False while the handler cannot take more events; the client stops reading from vLLM (so
  /// TCP and vLLM slow down) until `VLLMCall.resume()`.
  var vllmWantsMore: Bool { get }
  /// The call is over: a JSON body, the end of an event stream, or a failure.
  func vllmFinished(_ outcome: VLLMOutcome)
  /// The request was written to vLLM's socket at `time` (monotonic nanoseconds): for latency
  /// statistics. Optional.
  func vllmRequestSent(at time: UInt64)
}

extension VLLMResponseHandler {
  public func vllmRequestSent(at time: UInt64) {}
  public func vllmEvent(borrowing data: Span<UInt8>, receivedAt: UInt64) -> Bool { false }
}

/// How an upstream call ended.
public enum VLLMOutcome {
  /// A 2xx response that was not an event stream: its whole body, its content type, and when its
  /// last bytes arrived (monotonic nanoseconds; 0 if unknown). A 200 whose body is vLLM's error
  /// object arrives as `.failed` instead.
  case body([UInt8], contentType: String, receivedAt: UInt64)
  /// An event stream ended; `cleanly` is false when it stopped in the middle of an event.
  case streamEnded(cleanly: Bool)
  /// An error status, a connection failure, or a timeout.
  case failed(VLLMError)
}
