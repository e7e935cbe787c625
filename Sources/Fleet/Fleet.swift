import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import ProtoJSON
import Synchronization
import VLLMClient

/// The vLLM servers behind the gateway: which serve which model, which are healthy, and which one
/// a call goes to. Knows no gRPC and no protobuf: calls come in as a routing key and an HTTP
/// request, and leave as a `VLLMCall`.
public final class Fleet: Sendable {
  /// One upstream given on the command line: calls go straight to it, with no routing,
  /// accounting or health at all, as before fleets; vLLM itself answers for an unknown model.
  public let isSingle: Bool
  /// That one upstream, which never changes: each call reads it without the state's lock.
  private let single: Upstream?
  private let makeClient: @Sendable (UpstreamSpec) -> VLLMClient
  /// A standard library Mutex (a futex): NIO's lock, a pthread mutex, cost about 40 instructions
  /// more each time a call reads the snapshot (callgrind).
  private let state: Mutex<FleetState>
  private let retryBudget = RetryBudget()
  private let modelHealthObservers = NIOLockedValueBox<[@Sendable ([(model: String, serving: Bool)]) -> Void]>([])
  private let logger: Logger

  /// A fleet of the plan's upstreams, each with a client `makeClient` makes.
  public init(
    plan: FleetPlan, logger: Logger = Logger(label: "fleet"),
    makeClient: @escaping @Sendable (UpstreamSpec) -> VLLMClient
  ) {
    precondition(!plan.upstreams.isEmpty, "a fleet has at least one upstream")
    self.isSingle = false
    self.single = nil
    self.makeClient = makeClient
    self.logger = logger
    var state = FleetState(plan: plan)
    state.rebuild(makeClient: makeClient)
    self.state = Mutex(state)
  }

  /// The one upstream `client` talks to, on the direct path.
  public init(single client: VLLMClient, extraHeaders: [String: String] = [:], requestTimeout: TimeAmount? = nil) {
    self.isSingle = true
    self.makeClient = { _ in client }
    self.logger = Logger(label: "fleet")
    var state = FleetState(
      plan: FleetPlan(upstreams: [
        UpstreamSpec(
          name: client.baseURL, url: client.baseURL, extraHeaders: extraHeaders, requestTimeout: requestTimeout)
      ]))
    state.rebuild(makeClient: { _ in client })
    self.single = state.snapshot.all[0]
    self.state = Mutex(state)
  }

  /// The upstreams now, in the plan's order.
  public var upstreams: [Upstream] { state.withLock { $0.snapshot.all } }

  var plan: FleetPlan { state.withLock { $0.plan } }

  /// Takes a new plan: upstreams that stay keep their connections, health and models; new ones
  /// start unknown; removed ones take no new call and are let go once their calls have ended.
  /// Requests that follow departures (streams that can move) hear of the removal at once.
  public func apply(_ plan: FleetPlan) {
    precondition(!isSingle && !plan.upstreams.isEmpty)
    let (summary, removed) = state.withLock { state -> (String, [Upstream]) in
      state.plan = plan
      let removed = state.rebuild(makeClient: makeClient)
      return (state.snapshot.all.map(\.name).joined(separator: ", "), removed)
    }
    logger.notice("fleet reconfigured", metadata: ["upstreams": "\(summary)"])
    publishModelHealth()
    for upstream in removed { upstream.announceDeparture("it was removed from the configuration") }
  }

  /// Starts a request for `key` on the upstream its policy picks, among those not in `excluding`
  /// (upstream ids: where a stream that is moving failed).
  public func start(
    key: RoutingKey, method: HTTPMethod, path: String, body: [UInt8]?, contentType: String = "application/json",
    extraHeaders: [(String, String)] = [], deadline: NIODeadline?, eventLoop: any EventLoop,
    handler: any RoutedResponseHandler, excluding: [Int] = []
  ) -> Result<VLLMCall, FleetRefusal> {
    if let upstream = single {
      handler.routed(to: upstream)
      return .success(
        upstream.client.start(
          method: method, path: path, body: body, contentType: contentType,
          extraHeaders: upstream.extraHeaders.isEmpty ? extraHeaders : extraHeaders + upstream.extraHeaders,
          deadline: deadline ?? upstream.requestTimeout.map { .now() + $0 }, eventLoop: eventLoop, handler: handler))
    }
    let upstream: Upstream
    switch choose(for: key, excluding: excluding) {
    case .success(let chosen): upstream = chosen
    case .failure(let refusal): return .failure(refusal)
    }
    retryBudget.recordRequest()
    let exchange = RoutedExchange(
      fleet: self, key: key,
      request: .init(
        method: method, path: path, body: body, contentType: contentType, extraHeaders: extraHeaders,
        deadline: deadline),
      eventLoop: eventLoop, handler: handler, excluded: excluding)
    exchange.start(on: upstream)
    return .success(VLLMCall(control: exchange, eventLoop: eventLoop))
  }

  /// Whether an upstream other than those in `excluding` serves `model` now.
  public func serves(_ model: String, excluding: [Int]) -> Bool {
    guard !isSingle else { return false }
    let snapshot = state.withLock { $0.snapshot }
    guard case .success(let candidates) = snapshot.candidates(for: model) else { return false }
    return candidates.contains { !excluding.contains($0.id) }
  }

  private func choose(for key: RoutingKey, excluding tried: [Int]) -> Result<Upstream, FleetRefusal> {
    let snapshot = state.withLock { $0.snapshot }
    switch snapshot.candidates(for: key.model) {
    case .failure(let refusal):
      return .failure(refusal)
    case .success(var candidates):
      if !tried.isEmpty {
        candidates.removeAll { tried.contains($0.id) }
        if candidates.isEmpty { return .failure(.unknownModel(key.model, served: snapshot.servedModels)) }
      }
      return .success(snapshot.choose(from: candidates, for: key))
    }
  }

  /// Another upstream for a request no byte of which reached vLLM, if the deadline and the retry
  /// budget allow one.
  func failover(for key: RoutingKey, excluding tried: [Int], deadline: NIODeadline?) -> Upstream? {
    if let deadline, deadline <= .now() { return nil }
    guard tried.count <= plan.maximumFailovers else { return nil }
    guard case .success(let next) = choose(for: key, excluding: tried), retryBudget.tryRetry() else { return nil }
    logger.debug("failover", metadata: ["to": "\(next.name)", "attempt": "\(tried.count + 1)"])
    return next
  }

  /// The wait before failover number `attempt` (1 is the second try of another upstream).
  func failoverBackoff(attempt: Int) -> TimeAmount {
    let plan = self.plan
    let doubled = plan.failoverBackoff.nanoseconds << Int64(min(max(attempt - 1, 0), 20))
    return .nanoseconds(min(doubled, plan.maximumFailoverBackoff.nanoseconds))
  }

  /// `upstream` answered that it does not serve `model`: it is taken off its list until the next
  /// discovery says otherwise.
  func modelMissing(_ model: String, on upstream: Upstream) {
    let changed = upstream.state.withLock { state -> Bool in
      guard var discovered = state.discovered, let index = discovered.ids.firstIndex(of: model) else { return false }
      discovered.ids.remove(at: index)
      discovered.entries.remove(at: index)
      state.discovered = discovered
      return true
    }
    if changed {
      logger.notice(
        "upstream no longer serves a model", metadata: ["upstream": "\(upstream.name)", "model": "\(model)"])
      refreshSnapshot()
    }
  }

  /// How an upstream answered a call: passive health.
  func record(_ outcome: VLLMOutcome, of upstream: Upstream) {
    let failed: Bool
    if case .failed(let error) = outcome { failed = error.countsAgainstUpstream } else { failed = false }
    upstream.requestsEnded.wrappingAdd(1, ordering: .relaxed)
    if failed { upstream.failures.wrappingAdd(1, ordering: .relaxed) }
    if !failed {
      // The common case reads the state without a change to publish.
      upstream.state.withLock { state in
        if state.health.consecutiveFailures > 0 { state.health.callSucceeded() }
      }
      return
    }
    let mayEject = hasOtherEligibleUpstream(than: upstream)
    let policy = plan.health
    let ejected = upstream.state.withLock {
      $0.health.callFailed(now: .now(), policy: policy, mayEject: mayEject)
    }
    if ejected {
      logger.warning("upstream ejected after consecutive failures", metadata: ["upstream": "\(upstream.name)"])
      refreshSnapshot()
      upstream.announceDeparture("it was ejected after consecutive failures")
    }
  }

  /// Whether ejecting `upstream` leaves each of its models with another eligible upstream.
  private func hasOtherEligibleUpstream(than upstream: Upstream) -> Bool {
    let snapshot = state.withLock { $0.snapshot }
    guard let models = upstream.models else { return snapshot.eligible.contains { $0 !== upstream } }
    return models.allSatisfy { model in
      snapshot.eligibleByModel[model]?.contains { $0 !== upstream } ?? false
    }
  }

  /// Rebuilds who serves what after a change of health or models.
  func refreshSnapshot() {
    state.withLock { $0.refreshSnapshot() }
    publishModelHealth()
  }

  private func publishModelHealth() {
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
      guard let discovered = upstream.state.withLock({ $0.discovered }) else {
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
    let snapshot = state.withLock { $0.snapshot }
    return snapshot.servedModels.map { ($0, !(snapshot.eligibleByModel[$0]?.isEmpty ?? true)) }
  }

  // MARK: Background checks

  /// Starts the health checks, model discovery and name resolution on `eventLoop`; the returned
  /// task stops them.
  public func startChecks(on eventLoop: any EventLoop) -> RepeatedTask? {
    guard !isSingle else { return nil }
    // Made on the loop at the first tick: the checker is the loop's alone.
    let checker = NIOLoopBoundBox.makeEmptyBox(valueType: HealthChecker.self, eventLoop: eventLoop)
    let interval = plan.health.checkInterval
    return eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: interval) { _ in
      if checker.value == nil { checker.value = HealthChecker(fleet: self, eventLoop: eventLoop) }
      checker.value?.tick()
    }
  }

  /// The host names to resolve, for upstreams that may stand for several addresses.
  var hostsToResolve: Set<String> { Set(plan.upstreams.compactMap(\.hostToResolve)) }

  /// A host name's addresses now; the fleet follows them when there are several.
  func resolved(_ host: String, addresses: [String]) {
    let removed = state.withLock { state -> [Upstream]? in
      let sorted = addresses.sorted()
      guard state.resolved[host] != sorted else { return nil }
      let before = state.resolved[host] ?? []
      state.resolved[host] = sorted
      // One address or none: the host name itself is the upstream, before and after.
      guard before.count > 1 || sorted.count > 1 else { return nil }
      return state.rebuild(makeClient: makeClient)
    }
    if let removed {
      logger.notice("upstream addresses changed", metadata: ["host": "\(host)", "addresses": "\(addresses.sorted())"])
      publishModelHealth()
      for upstream in removed { upstream.announceDeparture("its address is no longer resolved") }
    }
  }

  /// Lets go of removed upstreams whose calls have all ended.
  func retireIdle() {
    let clients = state.withLock { $0.takeIdleRetired() }
    for client in clients {
      Task { try? await client.shutdown() }
    }
  }

  /// Removed upstreams still finishing calls.
  var retiringCount: Int { state.withLock { $0.retiring.count } }

  /// Every client, for shutdown.
  public func shutdown() async {
    let clients = state.withLock { state in
      var seen = Set<ObjectIdentifier>()
      return (state.snapshot.all + state.retiring).map(\.client).filter { seen.insert(ObjectIdentifier($0)).inserted }
    }
    for client in clients { try? await client.shutdown() }
  }

  func checked(_ upstream: Upstream, healthy: Bool) {
    let policy = plan.health
    let changed = upstream.state.withLock { state -> Bool in
      let before = state.health.isEligible
      state.health.checked(healthy: healthy, now: .now(), policy: policy)
      return before != state.health.isEligible
    }
    if changed {
      logger.notice(
        healthy ? "upstream readmitted" : "upstream marked down by its health checks",
        metadata: ["upstream": "\(upstream.name)"])
      refreshSnapshot()
      if !healthy { upstream.announceDeparture("its health checks failed") }
    }
  }

  func discovered(_ upstream: Upstream, models: DiscoveredModels) {
    let changed = upstream.state.withLock { state -> Bool in
      // vLLM stamps each listing anew ("created"): only another set of models is a change.
      let sameModels = state.discovered?.ids == models.ids
      state.discovered = models
      return !sameModels
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
