import VLLMClient

/// A response handler that wants to know which upstream a request went to (after any failover):
/// for access logs and metrics.
public protocol RoutedResponseHandler: VLLMResponseHandler {
  func routed(to upstream: Upstream)
}
