import NIOConcurrencyHelpers
import NIOCore
import Testing
import VLLMClient

@testable import Fleet

/// Requests on an upstream hear when it leaves the fleet, so streams can move before they fail.
@Suite struct UpstreamDepartureTests {
  func fleet(_ specs: [UpstreamSpec]) -> Fleet {
    Fleet(plan: FleetPlan(upstreams: specs)) { _ in TestUpstreams.client }
  }

  /// Reasons each upstream announced, by name.
  func listen(to upstreams: [Upstream]) -> NIOLockedValueBox<[String]> {
    let heard = NIOLockedValueBox<[String]>([])
    for upstream in upstreams {
      let name = upstream.name
      upstream.watchDeparture(by: ObjectIdentifier(upstream)) { reason in
        heard.withLockedValue { $0.append("\(name): \(reason)") }
      }
    }
    return heard
  }

  @Test func eachWatcherHearsOnceAndAWatcherThatStoppedHearsNothing() {
    let upstream = TestUpstreams.make(1)[0]
    let heard = NIOLockedValueBox(0)
    final class Watcher: Sendable {}
    let (first, second) = (Watcher(), Watcher())
    upstream.watchDeparture(by: ObjectIdentifier(first)) { _ in heard.withLockedValue { $0 += 1 } }
    upstream.watchDeparture(by: ObjectIdentifier(second)) { _ in heard.withLockedValue { $0 += 10 } }
    upstream.stopWatchingDeparture(by: ObjectIdentifier(second))
    upstream.announceDeparture("test")
    upstream.announceDeparture("again")
    #expect(heard.withLockedValue { $0 } == 1)
  }

  @Test func ejectionMarkingDownAndRemovalAreAnnounced() {
    let specs = ["a", "b", "c"].map { UpstreamSpec(name: $0, url: "http://\($0):1", models: ["m"]) }
    var plan = FleetPlan(upstreams: specs)
    plan.health.consecutiveFailuresToEject = 1
    let fleet = fleet(specs)
    fleet.apply(plan)
    let (a, b, c) = (fleet.upstreams[0], fleet.upstreams[1], fleet.upstreams[2])
    let heard = listen(to: [a, b, c])
    fleet.record(.failed(VLLMError(kind: .upstream, httpStatus: 500, message: "engine died")), of: a)
    fleet.checked(b, healthy: false)
    #expect(heard.withLockedValue { $0 } == ["a: it was ejected after consecutive failures"])
    fleet.checked(b, healthy: false)
    fleet.apply(FleetPlan(upstreams: [specs[0], specs[1]]))
    #expect(
      heard.withLockedValue { $0 } == [
        "a: it was ejected after consecutive failures", "b: its health checks failed",
        "c: it was removed from the configuration",
      ])
  }
}
