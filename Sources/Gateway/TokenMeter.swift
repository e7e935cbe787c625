import VLLMClient

/// Between a call and its upstream request when the call's key has a token limit: keeps the
/// last event (where vLLM puts the usage of a stream) and charges the key when the answer ends.
final class TokenMeter: VLLMResponseHandler {
  private let inner: any VLLMResponseHandler
  private let key: ClientKey
  private var lastEvent: [UInt8] = []

  init(_ inner: any VLLMResponseHandler, key: ClientKey) {
    self.inner = inner
    self.key = key
  }

  func vllmEvent(_ event: ServerSentEvent) {
    if !event.isDone { lastEvent = event.data }
    inner.vllmEvent(event)
  }

  var vllmWantsMore: Bool { inner.vllmWantsMore }

  func vllmRequestSent(at time: UInt64) {
    inner.vllmRequestSent(at: time)
  }

  func vllmFinished(_ outcome: VLLMOutcome) {
    switch outcome {
    case .body(let body, _, _): key.charge(tokens: TokenUsage.tokens(in: body))
    case .streamEnded: key.charge(tokens: TokenUsage.tokens(in: lastEvent))
    case .failed: break
    }
    inner.vllmFinished(outcome)
  }
}
