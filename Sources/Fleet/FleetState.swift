import VLLMClient

/// A fleet's mutable state, under its lock: the plan, the upstreams standing for it, those being
/// let go, resolved host names, the policies, and the snapshot calls read.
struct FleetState {
  var plan: FleetPlan
  var members: [(spec: UpstreamSpec, upstream: Upstream)] = []
  /// Removed upstreams, kept until their calls have ended.
  var retiring: [Upstream] = []
  /// Host name → its addresses, sorted, as last resolved.
  var resolved: [String: [String]] = [:]
  var policies: Policies
  var snapshot = FleetSnapshot(upstreams: [], policies: nil)
  private var nextID = 0

  /// The policies in use, kept across plans that name the same ones, so a prefix table or a
  /// round-robin turn survives a reload.
  struct Policies {
    var generationName: RoutingPolicyName
    var poolingName: RoutingPolicyName
    var generation: any RoutingPolicy
    var pooling: any RoutingPolicy
    let other: any RoutingPolicy = LeastLoadPolicy()

    init(_ plan: FleetPlan) {
      generationName = plan.generationPolicy
      poolingName = plan.poolingPolicy
      generation = plan.generationPolicy.make()
      pooling = plan.poolingPolicy.make()
    }

    mutating func follow(_ plan: FleetPlan) {
      if plan.generationPolicy != generationName {
        generationName = plan.generationPolicy
        generation = plan.generationPolicy.make()
      }
      if plan.poolingPolicy != poolingName {
        poolingName = plan.poolingPolicy
        pooling = plan.poolingPolicy.make()
      }
    }
  }

  init(plan: FleetPlan) {
    self.plan = plan
    self.policies = Policies(plan)
  }

  /// The specs the plan stands for now: an http:// host name with several addresses is one per
  /// address.
  var desiredSpecs: [UpstreamSpec] {
    plan.upstreams.flatMap { spec -> [UpstreamSpec] in
      guard let host = spec.hostToResolve, let addresses = resolved[host], addresses.count > 1 else { return [spec] }
      return addresses.map { spec.at(address: $0) }
    }
  }

  /// Matches the upstreams to the plan: an unchanged spec keeps its upstream (connections, health,
  /// models); a changed or new one gets a new upstream, on the existing client when the URL and
  /// key are the same; the rest retire. Returns the upstreams it retired.
  @discardableResult
  mutating func rebuild(makeClient: (UpstreamSpec) -> VLLMClient) -> [Upstream] {
    var remaining = members
    var next: [(spec: UpstreamSpec, upstream: Upstream)] = []
    for spec in desiredSpecs {
      if let index = remaining.firstIndex(where: { $0.spec == spec }) {
        next.append(remaining.remove(at: index))
        continue
      }
      let client =
        members.first { $0.spec.url == spec.url && $0.spec.apiKey == spec.apiKey }?.upstream.client ?? makeClient(spec)
      let upstream = Upstream(
        id: nextID, name: spec.name, client: client, weight: spec.weight, models: spec.models,
        extraHeaders: spec.extraHeaders.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
        requestTimeout: spec.requestTimeout)
      nextID += 1
      next.append((spec, upstream))
    }
    retiring += remaining.map(\.upstream)
    members = next
    policies.follow(plan)
    refreshSnapshot()
    return remaining.map(\.upstream)
  }

  mutating func refreshSnapshot() {
    snapshot = FleetSnapshot(upstreams: members.map(\.upstream), policies: policies)
  }

  /// Retired upstreams with no call left, and the clients no upstream uses any more.
  mutating func takeIdleRetired() -> [VLLMClient] {
    let idle = retiring.filter { $0.callsInFlight == 0 }
    retiring.removeAll { $0.callsInFlight == 0 }
    let inUse = Set((members.map(\.upstream) + retiring).map { ObjectIdentifier($0.client) })
    var seen = Set<ObjectIdentifier>()
    return idle.map(\.client).filter {
      !inUse.contains(ObjectIdentifier($0)) && seen.insert(ObjectIdentifier($0)).inserted
    }
  }
}
