/// Picks one upstream for a call among those that serve its model and are healthy (never empty).
/// A policy is one file; it sees upstreams and the routing key, and knows nothing of gRPC or of
/// vLLM's protocol.
public protocol RoutingPolicy: Sendable {
  func choose(from candidates: [Upstream], for key: RoutingKey) -> Upstream
}

/// The policies a configuration names.
public enum RoutingPolicyName: String, Sendable, CaseIterable, Codable {
  case roundRobin = "round_robin"
  case leastLoad = "least_load"
  case prefix

  func make() -> any RoutingPolicy {
    switch self {
    case .roundRobin: RoundRobinPolicy()
    case .leastLoad: LeastLoadPolicy()
    case .prefix: PrefixAffinityPolicy()
    }
  }
}

extension Upstream {
  /// Load per unit of weight: what "least loaded" compares.
  var weightedLoad: Double { Double(load) / weight }
}
