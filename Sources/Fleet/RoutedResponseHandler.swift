import VLLMClient

/// A response handler that wants to know which upstream a request went to (after any failover):
/// for access logs and metrics; and, if it can do something about it, when that upstream leaves
/// the fleet while its request runs. Every handler of a fleet request is one, those that want
/// none of this with the defaults: asking a handler whether it is one (`as? any
/// RoutedResponseHandler`) cost about 300 instructions a call (callgrind).
public protocol RoutedResponseHandler: VLLMResponseHandler {
  func routed(to upstream: Upstream)

  /// Whether `upstreamDeparting` should be called: only handlers that can act on it (a stream
  /// that can move elsewhere) ask, as watching costs a lock on the upstream per request.
  var followsDepartures: Bool { get }

  /// The request's upstream left the fleet (ejected, marked down by its health checks, removed by
  /// a reload) while the request runs; on the request's event loop. The request goes on unless
  /// the handler cancels it.
  func upstreamDeparting(_ upstream: Upstream, reason: String)
}

extension RoutedResponseHandler {
  public func routed(to upstream: Upstream) {}
  public var followsDepartures: Bool { false }
  public func upstreamDeparting(_ upstream: Upstream, reason: String) {}
}
