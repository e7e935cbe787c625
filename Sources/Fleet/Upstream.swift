import NIOConcurrencyHelpers
import NIOCore
import Synchronization
import VLLMClient

/// One vLLM server of the fleet: its client, its weight, the models it serves, its health, and
/// the calls the gateway has in flight on it.
public final class Upstream: Sendable {
  /// Stable for the process: prefix affinity remembers upstreams by it.
  public let id: Int
  /// For logs and errors: the configured name, else the base URL.
  public let name: String
  public let client: VLLMClient
  public let weight: Double
  /// Models named in the configuration; nil when /v1/models says.
  public let configuredModels: [String]?
  /// Headers every request to it carries (a configuration's extra_headers).
  public let extraHeaders: [(String, String)]
  /// The bound on a request to it when the call has none.
  public let requestTimeout: TimeAmount?
  /// Calls in flight on this upstream from this gateway: the load signal that needs no scrape.
  let outstanding = Atomic<Int>(0)
  /// Requests queued in vLLM (all its clients', not only this gateway's), from its /metrics.
  let waiting = Atomic<Int>(0)
  /// Its KV cache's fill, in thousandths, from its /metrics.
  let kvCachePermille = Atomic<Int>(0)
  /// Calls that ended on it, and those of them that counted against its health.
  let requestsEnded = Atomic<Int>(0)
  let failures = Atomic<Int>(0)
  /// A standard library Mutex: NIO's lock cost about 40 instructions more a call (callgrind).
  let state: Mutex<UpstreamState>
  /// Requests that want to hear when it leaves the fleet while they run (streams that can move).
  private let departureWatchers = NIOLockedValueBox<[ObjectIdentifier: @Sendable (String) -> Void]>([:])

  public init(
    id: Int, name: String, client: VLLMClient, weight: Double, models: [String]?,
    extraHeaders: [(String, String)] = [], requestTimeout: TimeAmount? = nil
  ) {
    self.extraHeaders = extraHeaders
    self.requestTimeout = requestTimeout
    self.id = id
    self.name = name
    self.client = client
    self.weight = weight > 0 ? weight : 1
    self.configuredModels = models
    self.state = Mutex(UpstreamState())
  }

  public var callsInFlight: Int { outstanding.load(ordering: .relaxed) }

  /// The load routing compares: this gateway's calls in flight plus what vLLM has queued, as
  /// replicas of the gateway share vLLM and only its /metrics sees them all. A KV cache over 90%
  /// full doubles it: vLLM is about to preempt, and a new sequence would make it worse.
  var load: Int {
    let queued = outstanding.load(ordering: .relaxed) + waiting.load(ordering: .relaxed)
    return kvCachePermille.load(ordering: .relaxed) > 900 ? queued * 2 + 1 : queued
  }

  /// Calls `notify` (on any thread) when the upstream leaves the fleet, ejected, marked down or
  /// removed, unless `stopWatchingDeparture(by:)` came first. Once, at most.
  func watchDeparture(by watcher: ObjectIdentifier, _ notify: @escaping @Sendable (_ reason: String) -> Void) {
    departureWatchers.withLockedValue { $0[watcher] = notify }
  }

  func stopWatchingDeparture(by watcher: ObjectIdentifier) {
    departureWatchers.withLockedValue { _ = $0.removeValue(forKey: watcher) }
  }

  /// Tells every watcher that it is leaving, and forgets them.
  func announceDeparture(_ reason: String) {
    let watchers = departureWatchers.withLockedValue { watchers in
      defer { watchers.removeAll() }
      return Array(watchers.values)
    }
    for notify in watchers { notify(reason) }
  }

  /// What metrics show of it.
  public var report: UpstreamReport {
    let (eligible, ejections) = state.withLock { ($0.health.isEligible, $0.health.ejectionsTotal) }
    return UpstreamReport(
      eligible: eligible, callsInFlight: callsInFlight, requests: requestsEnded.load(ordering: .relaxed),
      failures: failures.load(ordering: .relaxed), ejections: ejections, vllmWaiting: waiting.load(ordering: .relaxed))
  }

  func recordLoad(_ load: VLLMLoad?) {
    waiting.store(load?.waiting ?? 0, ordering: .relaxed)
    kvCachePermille.store(Int((load?.kvCacheUsage ?? 0) * 1000), ordering: .relaxed)
  }

  /// The models it serves: the configured ones, else the last good /v1/models (nil until then).
  var models: [String]? {
    configuredModels ?? state.withLock { $0.discovered?.ids }
  }
}

/// What the background checks learnt of an upstream.
struct UpstreamState: Sendable {
  var discovered: DiscoveredModels? = nil
  var health = UpstreamHealth()
}

/// An upstream's figures for metrics.
public struct UpstreamReport: Sendable {
  public var eligible: Bool
  public var callsInFlight: Int
  public var requests: Int
  public var failures: Int
  public var ejections: Int
  public var vllmWaiting: Int
}
