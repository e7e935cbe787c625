import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import ProtoJSON
import VLLMClient

/// The vLLM servers behind the gateway: which serve which model, which are healthy, and which one
/// a call goes to. Knows no gRPC and no protobuf: calls come in as a routing key and an HTTP
/// request, and leave as a `VLLMCall`.
public final class Fleet: Sendable {
  public let upstreams: [Upstream]
  private let generationPolicy: any RoutingPolicy
  private let poolingPolicy: any RoutingPolicy
  private let otherPolicy: any RoutingPolicy = LeastLoadPolicy()
  let health: HealthPolicy
  private let snapshot: NIOLockedValueBox<FleetSnapshot>
  private let retryBudget = RetryBudget()
  private let modelHealthObservers = NIOLockedValueBox<[@Sendable ([(model: String, serving: Bool)]) -> Void]>([])
  private let logger: Logger
  /// Other upstreams tried at most for one request that reached none, and the backoff between
  /// tries after the first (which is at once).
  let maximumFailovers: Int
  let failoverBackoff: (initial: TimeAmount, maximum: TimeAmount)

  public init(
    upstreams: [Upstream], generationPolicy: RoutingPolicyName = .prefix, poolingPolicy: RoutingPolicyName = .leastLoad,
    health: HealthPolicy = HealthPolicy(), maximumFailovers: Int = 2,
    failoverBackoff: (initial: TimeAmount, maximum: TimeAmount) = (.milliseconds(25), .milliseconds(500)),
    logger: Logger = Logger(label: "fleet")
  ) {
    self.maximumFailovers = maximumFailovers
    self.failoverBackoff = failoverBackoff
    precondition(!upstreams.isEmpty, "a fleet has at least one upstream")
    self.upstreams = upstreams
    self.generationPolicy = generationPolicy.make()
    self.poolingPolicy = poolingPolicy.make()
    self.health = health
    self.logger = logger
    self.snapshot = NIOLockedValueBox(FleetSnapshot(upstreams: upstreams))
  }

  /// One upstream: calls go straight to it, with no routing, accounting or health at all, as
  /// before fleets; vLLM itself answers for an unknown model.
  public var isSingle: Bool { upstreams.count == 1 }

  /// Starts a request for `key` on the upstream its policy picks.
  public func start(
    key: RoutingKey, method: HTTPMethod, path: String, body: [UInt8]?, contentType: String = "application/json",
    extraHeaders: [(String, String)] = [], deadline: NIODeadline?, eventLoop: any EventLoop,
    handler: any VLLMResponseHandler
  ) -> Result<VLLMCall, FleetRefusal> {
    if isSingle {
      let upstream = upstreams[0]
      return .success(
        upstream.client.start(
          method: method, path: path, body: body, contentType: contentType,
          extraHeaders: upstream.extraHeaders.isEmpty ? extraHeaders : extraHeaders + upstream.extraHeaders,
          deadline: deadline ?? upstream.requestTimeout.map { .now() + $0 }, eventLoop: eventLoop, handler: handler))
    }
    let upstream: Upstream
    switch choose(for: key, excluding: []) {
    case .success(let chosen): upstream = chosen
    case .failure(let refusal): return .failure(refusal)
    }
    retryBudget.recordRequest()
    let exchange = RoutedExchange(
      fleet: self, key: key,
      request: .init(
        method: method, path: path, body: body, contentType: contentType, extraHeaders: extraHeaders,
        deadline: deadline),
      eventLoop: eventLoop, handler: handler)
    exchange.start(on: upstream)
    return .success(VLLMCall(control: RoutedCallControl(exchange: NIOLoopBound(exchange, eventLoop: eventLoop))))
  }

  private func choose(for key: RoutingKey, excluding tried: [Int]) -> Result<Upstream, FleetRefusal> {
    let snapshot = self.snapshot.withLockedValue { $0 }
    switch snapshot.candidates(for: key.model) {
    case .failure(let refusal):
      return .failure(refusal)
    case .success(var candidates):
      if !tried.isEmpty {
        candidates.removeAll { tried.contains($0.id) }
        if candidates.isEmpty { return .failure(.unknownModel(key.model, served: snapshot.servedModels)) }
      }
      let policy: any RoutingPolicy
      switch key.workload {
      case .generation: policy = generationPolicy
      case .pooling: policy = poolingPolicy
      case .other: policy = otherPolicy
      }
      return .success(policy.choose(from: candidates, for: key))
    }
  }

  /// Another upstream for a request no byte of which reached vLLM, if the deadline and the retry
  /// budget allow one.
  func failover(for key: RoutingKey, excluding tried: [Int], deadline: NIODeadline?) -> Upstream? {
    if let deadline, deadline <= .now() { return nil }
    guard tried.count <= maximumFailovers else { return nil }
    guard case .success(let next) = choose(for: key, excluding: tried), retryBudget.tryRetry() else { return nil }
    logger.debug("failover", metadata: ["to": "\(next.name)", "attempt": "\(tried.count + 1)"])
    return next
  }

  /// The wait before failover number `attempt` (1 is the second try of another upstream).
  func failoverBackoff(attempt: Int) -> TimeAmount {
    let doubled = failoverBackoff.initial.nanoseconds << Int64(min(max(attempt - 1, 0), 20))
    return .nanoseconds(min(doubled, failoverBackoff.maximum.nanoseconds))
  }

  /// How an upstream answered a call: passive health.
  func record(_ outcome: VLLMOutcome, of upstream: Upstream) {
    let failed: Bool
    if case .failed(let error) = outcome { failed = error.countsAgainstUpstream } else { failed = false }
    if !failed {
      // The common case reads the state without a change to publish.
      upstream.state.withLockedValue { state in
        if state.health.consecutiveFailures > 0 { state.health.callSucceeded() }
      }
      return
    }
    let mayEject = hasOtherEligibleUpstream(than: upstream)
    let ejected = upstream.state.withLockedValue {
      $0.health.callFailed(now: .now(), policy: health, mayEject: mayEject)
    }
    if ejected {
      logger.warning("upstream ejected after consecutive failures", metadata: ["upstream": "\(upstream.name)"])
      refreshSnapshot()
    }
  }

  /// Whether ejecting `upstream` leaves each of its models with another eligible upstream.
  private func hasOtherEligibleUpstream(than upstream: Upstream) -> Bool {
    let snapshot = self.snapshot.withLockedValue { $0 }
    guard let models = upstream.models else { return snapshot.eligible.contains { $0 !== upstream } }
    return models.allSatisfy { model in
      snapshot.eligibleByModel[model]?.contains { $0 !== upstream } ?? false
    }
  }

  func refreshSnapshot() {
    let fresh = FleetSnapshot(upstreams: upstreams)
    snapshot.withLockedValue { $0 = fresh }
    let health = modelHealth()
    for observer in modelHealthObservers.withLockedValue({ $0 }) { observer(health) }
  }

  /// Calls `observer` with every model's health now and after each change of who serves what
  /// (for grpc.health.v1, where a model is SERVING while one healthy upstream serves it).
  public func observeModelHealth(_ observer: @escaping @Sendable ([(model: String, serving: Bool)]) -> Void) {
    modelHealthObservers.withLockedValue { $0.append(observer) }
    observer(modelHealth())
  }

  /// Every model served, once each, with each entry as the first upstream to list it wrote it:
  /// the body of a merged GET /v1/models. An upstream that is down keeps its last good list.
  public func mergedModelList() -> [UInt8] {
    var seen = Set<String>()
    var json = JSONWriter()
    json.beginObject()
    json.key("object")
    json.string("list")
    json.key("data")
    json.beginArray()
    for upstream in upstreams {
      guard let discovered = upstream.state.withLockedValue({ $0.discovered }) else {
        for model in upstream.configuredModels ?? [] where seen.insert(model).inserted {
          json.beginObject()
          json.key("id")
          json.string(model)
          json.key("object")
          json.string("model")
          json.key("owned_by")
          json.string("vllm")
          json.endObject()
        }
        continue
      }
      for (id, entry) in zip(discovered.ids, discovered.entries) {
        if let allowed = upstream.configuredModels, !allowed.contains(id) { continue }
        if seen.insert(id).inserted { json.raw(entry) }
      }
    }
    json.endArray()
    json.endObject()
    return json.bytes
  }

  /// The models at least one upstream serves, and whether one eligible upstream serves each.
  public func modelHealth() -> [(model: String, serving: Bool)] {
    let snapshot = self.snapshot.withLockedValue { $0 }
    return snapshot.servedModels.map { ($0, !(snapshot.eligibleByModel[$0]?.isEmpty ?? true)) }
  }

  // MARK: Background checks

  /// Starts the health checks and model discovery on `eventLoop`; the returned task stops them.
  public func startChecks(on eventLoop: any EventLoop, discoveryInterval: TimeAmount = .seconds(10))
    -> RepeatedTask?
  {
    guard !isSingle else { return nil }
    // Made on the loop at the first tick: the checker is the loop's alone.
    let checker = NIOLoopBoundBox.makeEmptyBox(valueType: HealthChecker.self, eventLoop: eventLoop)
    return eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: health.checkInterval) { _ in
      if checker.value == nil {
        checker.value = HealthChecker(fleet: self, eventLoop: eventLoop, discoveryInterval: discoveryInterval)
      }
      checker.value?.tick()
    }
  }

  func checked(_ upstream: Upstream, healthy: Bool) {
    let changed = upstream.state.withLockedValue { state -> Bool in
      let before = state.health.isEligible
      state.health.checked(healthy: healthy, now: .now(), policy: health)
      return before != state.health.isEligible
    }
    if changed {
      logger.notice(
        healthy ? "upstream readmitted" : "upstream marked down by its health checks",
        metadata: ["upstream": "\(upstream.name)"])
      refreshSnapshot()
    }
  }

  func discovered(_ upstream: Upstream, models: DiscoveredModels) {
    let changed = upstream.state.withLockedValue { state -> Bool in
      guard state.discovered != models else { return false }
      state.discovered = models
      return true
    }
    if changed {
      logger.info("upstream models", metadata: ["upstream": "\(upstream.name)", "models": "\(models.ids)"])
      refreshSnapshot()
    }
  }

  /// Every 10 s, recent traffic's weight in the retry budget halves.
  func decayRetryBudget() {
    retryBudget.decay()
  }
}
