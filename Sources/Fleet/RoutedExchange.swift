import NIOCore
import NIOHTTP1
import VLLMClient

/// One call's request on a fleet: counts it against its upstream's load, tells the fleet how the
/// upstream answered (passive health), and when the upstream could not be reached at all, so no
/// byte of the request reached vLLM, sends it to another upstream at once (backing off after the
/// first), within the call's deadline and the fleet's retry budget. Anything that may have reached
/// vLLM is never sent again. Lives on the call's event loop.
final class RoutedExchange: VLLMResponseHandler, LoopBoundCallControl {
  struct Request {
    var method: HTTPMethod
    var path: String
    var body: [UInt8]?
    var contentType: String
    var extraHeaders: [(String, String)]
    var deadline: NIODeadline?
  }

  private let fleet: Fleet
  private let key: RoutingKey
  private let request: Request
  private let eventLoop: any EventLoop
  private var handler: (any RoutedResponseHandler)?
  private var upstream: Upstream? = nil
  private var current: VLLMCall? = nil
  /// The upstreams tried, in order: the first held apart, since most requests go to one only and
  /// an array of one was an allocation a call (callgrind).
  private var firstTried: Int? = nil
  private var triedAfterFirst: [Int] = []
  private var tried: [Int] { firstTried.map { [$0] + triedAfterFirst } ?? [] }
  private var triedCount: Int { firstTried == nil ? 0 : 1 + triedAfterFirst.count }
  /// Upstreams this request must not go to (where the stream it continues failed).
  private let excluded: [Int]
  private var backoffTimer: Scheduled<Void>? = nil
  private var sawEvent = false
  /// Whether the upstream has this request among its departure watchers.
  private var watchesDeparture = false

  init(
    fleet: Fleet, key: RoutingKey, request: Request, eventLoop: any EventLoop, handler: any RoutedResponseHandler,
    excluded: [Int] = []
  ) {
    self.excluded = excluded
    self.fleet = fleet
    self.key = key
    self.request = request
    self.eventLoop = eventLoop
    self.handler = handler
  }

  func start(on upstream: Upstream) {
    guard handler != nil else { return }
    self.upstream = upstream
    if firstTried == nil { firstTried = upstream.id } else { triedAfterFirst.append(upstream.id) }
    upstream.outstanding.wrappingAdd(1, ordering: .relaxed)
    if let handler {
      handler.routed(to: upstream)
      if handler.followsDepartures { watchDeparture(of: upstream) }
    }
    current = upstream.client.start(
      method: request.method, path: request.path, body: request.body, contentType: request.contentType,
      extraHeaders: upstream.extraHeaders.isEmpty ? request.extraHeaders : request.extraHeaders + upstream.extraHeaders,
      deadline: request.deadline ?? upstream.requestTimeout.map { .now() + $0 }, eventLoop: eventLoop, handler: self)
  }

  /// Passes on, on the event loop, that `upstream` left the fleet while this request is on it.
  private func watchDeparture(of upstream: Upstream) {
    watchesDeparture = true
    let exchange = NIOLoopBound(self, eventLoop: eventLoop)
    upstream.watchDeparture(by: ObjectIdentifier(self)) { reason in
      exchange.eventLoop.execute {
        let exchange = exchange.value
        guard exchange.upstream === upstream, let handler = exchange.handler else {
          return
        }
        handler.upstreamDeparting(upstream, reason: reason)
      }
    }
  }

  /// Leaves the upstream: its load drops by this call.
  private func release() -> Upstream? {
    guard let upstream else { return nil }
    self.upstream = nil
    current = nil
    if watchesDeparture {
      watchesDeparture = false
      upstream.stopWatchingDeparture(by: ObjectIdentifier(self))
    }
    upstream.outstanding.wrappingSubtract(1, ordering: .relaxed)
    return upstream
  }

  // MARK: VLLMResponseHandler

  func vllmEvent(_ event: ServerSentEvent) {
    sawEvent = true
    handler?.vllmEvent(event)
  }

  func vllmEvent(borrowing data: Span<UInt8>, receivedAt: UInt64) -> Bool {
    // Declined, the event comes again as `vllmEvent(_:)`, which notes it.
    guard let handler, handler.vllmEvent(borrowing: data, receivedAt: receivedAt) else { return false }
    sawEvent = true
    return true
  }

  var vllmWantsMore: Bool { handler?.vllmWantsMore ?? false }

  func vllmRequestSent(at time: UInt64) {
    handler?.vllmRequestSent(at: time)
  }

  func vllmFinished(_ outcome: VLLMOutcome) {
    guard let upstream = release() else { return }
    fleet.record(outcome, of: upstream)
    if case .failed(let error) = outcome, error.isUnknownModel, !sawEvent, !key.model.isEmpty {
      // The upstream no longer serves the model (restarted with another since it was last
      // asked): it generated nothing, so the request may go where the model is served.
      fleet.modelMissing(key.model, on: upstream)
    }
    if case .failed(let error) = outcome, error.neverReachedUpstream || error.isUnknownModel, !sawEvent,
      let next = fleet.failover(
        for: key, excluding: excluded.isEmpty ? tried : tried + excluded, deadline: request.deadline)
    {
      if triedCount == 1 {
        start(on: next)
      } else {
        let delay = fleet.failoverBackoff(attempt: triedCount - 1)
        backoffTimer = eventLoop.assumeIsolated().scheduleTask(in: delay) {
          self.backoffTimer = nil
          self.start(on: next)
        }
      }
      return
    }
    let handler = self.handler
    self.handler = nil
    handler?.vllmFinished(outcome)
  }

  // MARK: From the call (LoopBoundCallControl: cancel and resume reach whichever upstream has it now)

  func cancel() {
    handler = nil
    backoffTimer?.cancel()
    backoffTimer = nil
    let call = current
    _ = release()
    call?.cancel()
  }

  func resume() {
    current?.resume()
  }
}

extension VLLMError {
  /// The upstream could not be reached: no byte of the request got to vLLM. (A cancelled call
  /// also carries `connectionFailed`, with 499.)
  var neverReachedUpstream: Bool { kind == .connectionFailed && httpStatus == 503 }

  /// vLLM's answer for a model it does not serve: refused before any work.
  var isUnknownModel: Bool { kind == .upstream && httpStatus == 404 && type == "NotFoundError" && param == "model" }

  /// Whether the failure says something about the upstream's health: unreachable, a 5xx, an
  /// answer cut short or silence. A 4xx is the request's fault.
  public var countsAgainstUpstream: Bool {
    switch kind {
    case .connectionFailed: httpStatus == 503
    case .malformed, .stalled: true
    case .upstream: httpStatus >= 500
    case .timeout: false
    }
  }
}
