import Fleet
import NIOCore
import VLLMClient

/// Between a call and its upstream request while its record is kept: notes the upstream, the
/// first event's time, and the usage vLLM reports (in the body, or a stream's last event), which
/// the call's key is charged. UnaryUpstreamCall notes them itself and goes without one.
final class CallMeter: RoutedResponseHandler {
  private let inner: any RoutedResponseHandler
  private let record: CallRecord
  /// The latest usage a streamed event carried, read as it passed: holding the last event
  /// instead would keep its buffer from going back to the loop's shared event storage, a few
  /// hundred bytes a stream for as long as it is open.
  private var streamUsage = TokenUsage()

  init(_ inner: any RoutedResponseHandler, record: CallRecord) {
    self.inner = inner
    self.record = record
  }

  func routed(to upstream: Upstream) {
    record.routed(to: upstream)
    inner.routed(to: upstream)
  }

  var followsDepartures: Bool { inner.followsDepartures }

  func upstreamDeparting(_ upstream: Upstream, reason: String) {
    inner.upstreamDeparting(upstream, reason: reason)
  }

  func vllmEvent(_ event: ServerSentEvent) {
    if record.firstEventAt == 0 {
      record.firstEventAt = event.receivedAt > 0 ? event.receivedAt : NIODeadline.now().uptimeNanoseconds
    }
    if !event.isDone {
      if TokenUsage.mayBeIn(event: event.data.span), let usage = TokenUsage.last(in: event.data) { streamUsage = usage }
      record.trace?.noteFinishReasons(in: event.data)
    }
    record.lastEventAt = event.receivedAt > 0 ? event.receivedAt : NIODeadline.now().uptimeNanoseconds
    inner.vllmEvent(event)
  }

  /// An event that may carry usage, or whose finish reasons a trace notes, is declined here, to
  /// be read whole as `vllmEvent(_:)`; so is one without an arrival time, which that stamps with
  /// the clock. A token's chunk goes on to the inner handler borrowed, and is noted only once
  /// that took it.
  func vllmEvent(borrowing data: Span<UInt8>, receivedAt: UInt64) -> Bool {
    guard receivedAt > 0, record.trace == nil, !TokenUsage.mayBeIn(event: data),
      inner.vllmEvent(borrowing: data, receivedAt: receivedAt)
    else { return false }
    if record.firstEventAt == 0 { record.firstEventAt = receivedAt }
    record.lastEventAt = receivedAt
    return true
  }

  var vllmWantsMore: Bool { inner.vllmWantsMore }

  func vllmRequestSent(at time: UInt64) {
    inner.vllmRequestSent(at: time)
  }

  func vllmFinished(_ outcome: VLLMOutcome) {
    let usage: TokenUsage
    switch outcome {
    case .body(let body, _, let receivedAt):
      record.replyArrived(body, at: receivedAt)
      usage = TokenUsage(in: body)
    case .streamEnded: usage = streamUsage
    case .failed: usage = TokenUsage()
    }
    record.upstreamFinished(outcome, usage: usage)
    inner.vllmFinished(outcome)
  }
}
