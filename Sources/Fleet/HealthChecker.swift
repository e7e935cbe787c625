import NIOCore
import NIOPosix
import VLLMClient

/// The fleet's background work, on one event loop, never on a call's path: each upstream's
/// /health every check interval, its /v1/models every discovery interval (and at once while it
/// has none), and the retry budget's decay.
final class HealthChecker {
  private let fleet: Fleet
  private let eventLoop: any EventLoop
  private var lastDiscovery: NIODeadline? = nil
  private var lastDecay = NIODeadline.now()
  /// Probes in flight, so a slow upstream is not asked again before it answered.
  private var probing: Set<Int> = []

  init(fleet: Fleet, eventLoop: any EventLoop) {
    self.fleet = fleet
    self.eventLoop = eventLoop
  }

  func tick() {
    let now = NIODeadline.now()
    let plan = fleet.plan
    let discoverAll = lastDiscovery.map { now - $0 >= plan.discoveryInterval } ?? true
    if discoverAll {
      lastDiscovery = now
      resolveHosts()
    }
    fleet.retireIdle()
    for upstream in fleet.upstreams where !probing.contains(upstream.id) {
      probing.insert(upstream.id)
      let needsModels =
        upstream.configuredModels == nil
        && (discoverAll || upstream.state.withLock { $0.discovered == nil })
      probe(upstream, path: "/health") { outcome in
        let healthy: Bool
        switch outcome {
        case .body, .streamEnded: healthy = true
        case .failed: healthy = false
        }
        self.fleet.checked(upstream, healthy: healthy)
        guard healthy else {
          upstream.recordLoad(nil)
          self.probing.remove(upstream.id)
          return
        }
        self.probe(upstream, path: "/metrics") { outcome in
          if case .body(let text, _, _) = outcome {
            upstream.recordLoad(VLLMLoad(prometheusText: text))
          } else {
            upstream.recordLoad(nil)
          }
          guard needsModels else {
            self.probing.remove(upstream.id)
            return
          }
          self.probe(upstream, path: "/v1/models") { outcome in
            self.probing.remove(upstream.id)
            if case .body(let json, _, _) = outcome, let models = DiscoveredModels(json: json) {
              self.fleet.discovered(upstream, models: models)
            }
          }
        }
      }
    }
    if now - lastDecay >= .seconds(10) {
      lastDecay = now
      fleet.decayRetryBudget()
    }
  }

  /// Resolves the plan's host names off the event loop (getaddrinfo blocks), each on its own.
  private func resolveHosts() {
    for host in fleet.hostsToResolve {
      let fleet = self.fleet
      NIOThreadPool.singleton.submit { state in
        guard case .active = state else { return }
        fleet.resolved(host, addresses: AddressResolver.addresses(of: host))
      }
    }
  }

  private func probe(_ upstream: Upstream, path: String, completion: @escaping (VLLMOutcome) -> Void) {
    _ = upstream.client.start(
      method: .GET, path: path, body: nil, deadline: .now() + fleet.plan.health.checkTimeout, eventLoop: eventLoop,
      handler: ProbeHandler(completion: completion))
  }
}

/// Collects one probe's answer.
private final class ProbeHandler: VLLMResponseHandler {
  private let completion: (VLLMOutcome) -> Void

  init(completion: @escaping (VLLMOutcome) -> Void) {
    self.completion = completion
  }

  func vllmEvent(_ event: ServerSentEvent) {}
  var vllmWantsMore: Bool { true }
  func vllmFinished(_ outcome: VLLMOutcome) { completion(outcome) }
}
