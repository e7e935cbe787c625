/// Who serves what, as of the last change of health or models: rebuilt off the request path, read
/// by every call. A class, so a call takes it with one retain rather than one per collection.
final class FleetSnapshot: Sendable {
  /// Eligible upstreams by model.
  let eligibleByModel: [String: [Upstream]]
  /// Every upstream by model, eligible or not: when none of a model's upstreams is eligible, the
  /// call still goes to one of them (Envoy's panic routing) rather than fail here.
  let allByModel: [String: [Upstream]]
  /// Eligible upstreams whose models are not known yet (no good /v1/models so far).
  let undiscovered: [Upstream]
  let eligible: [Upstream]
  let all: [Upstream]
  /// The policies by workload, held apart rather than as FleetState.Policies: taking that struct
  /// out of an optional copied its names and three policies, about 400 instructions a routed call
  /// (callgrind).
  private let generationPolicy: any RoutingPolicy
  private let poolingPolicy: any RoutingPolicy
  private let otherPolicy: any RoutingPolicy
  /// `eligibleByModel` as a list, when a fleet serves a few models (most serve one or two): a
  /// call's model found by comparing it with each, where the dictionary hashed it (~250
  /// instructions a call, callgrind, against ~30 for a comparison of equal strings).
  private let eligibleInOrder: [(model: String, upstreams: [Upstream])]?
  static let modelsCompared = 4

  init(upstreams: [Upstream], policies: FleetState.Policies? = nil) {
    all = upstreams
    generationPolicy = policies?.generation ?? LeastLoadPolicy()
    poolingPolicy = policies?.pooling ?? LeastLoadPolicy()
    otherPolicy = policies?.other ?? LeastLoadPolicy()
    var eligibleByModel: [String: [Upstream]] = [:]
    var allByModel: [String: [Upstream]] = [:]
    var undiscovered: [Upstream] = []
    var eligible: [Upstream] = []
    for upstream in upstreams {
      let (models, isEligible) = upstream.state.withLock {
        (upstream.configuredModels ?? $0.discovered?.ids, $0.health.isEligible)
      }
      if isEligible { eligible.append(upstream) }
      guard let models else {
        if isEligible { undiscovered.append(upstream) }
        continue
      }
      for model in Set(models) {
        allByModel[model, default: []].append(upstream)
        if isEligible { eligibleByModel[model, default: []].append(upstream) }
      }
    }
    self.eligibleByModel = eligibleByModel
    eligibleInOrder =
      eligibleByModel.count <= Self.modelsCompared ? eligibleByModel.map { (model: $0.key, upstreams: $0.value) } : nil
    self.allByModel = allByModel
    self.undiscovered = undiscovered
    self.eligible = eligible
  }

  var servedModels: [String] { allByModel.keys.sorted() }

  /// The upstream the policy for `key`'s workload picks among `candidates`.
  func choose(from candidates: [Upstream], for key: RoutingKey) -> Upstream {
    switch key.workload {
    case .generation: generationPolicy.choose(from: candidates, for: key)
    case .pooling: poolingPolicy.choose(from: candidates, for: key)
    case .other: otherPolicy.choose(from: candidates, for: key)
    }
  }

  /// The upstreams a call for `model` may go to; never empty when it succeeds.
  func candidates(for model: String) -> Result<[Upstream], FleetRefusal> {
    if model.isEmpty { return .success(eligible.isEmpty ? all : eligible) }
    if let eligibleInOrder {
      for entry in eligibleInOrder where entry.model == model { return .success(entry.upstreams) }
    } else if let upstreams = eligibleByModel[model] {
      return .success(upstreams)
    }
    if let upstreams = allByModel[model] { return .success(upstreams) }
    if !undiscovered.isEmpty { return .success(undiscovered) }
    return .failure(.unknownModel(model, served: servedModels))
  }
}
