import NIOCore
import Testing

@testable import Fleet

@Suite struct FleetMembershipTests {
  func fleet(_ specs: [UpstreamSpec]) -> Fleet {
    Fleet(plan: FleetPlan(upstreams: specs)) { _ in TestUpstreams.client }
  }

  @Test func aHostNameWithSeveralAddressesIsOneUpstreamPerAddress() {
    let fleet = fleet([UpstreamSpec(name: "svc", url: "http://vllm.ns.svc:8000/base", models: ["m"])])
    #expect(fleet.hostsToResolve == ["vllm.ns.svc"])
    #expect(fleet.upstreams.map(\.name) == ["svc"])
    fleet.resolved("vllm.ns.svc", addresses: ["10.0.0.2", "10.0.0.1", "fd00::3"])
    #expect(fleet.upstreams.map(\.name) == ["svc (10.0.0.1)", "svc (10.0.0.2)", "svc (fd00::3)"])
    #expect(fleet.plan.upstreams.count == 1)
    let before = fleet.upstreams.map(\.id)
    // The same addresses again change nothing; a pod going keeps the others as they were.
    fleet.resolved("vllm.ns.svc", addresses: ["10.0.0.1", "fd00::3", "10.0.0.2"])
    #expect(fleet.upstreams.map(\.id) == before)
    fleet.resolved("vllm.ns.svc", addresses: ["10.0.0.1", "fd00::3"])
    #expect(fleet.upstreams.map(\.id) == [before[0], before[2]])
  }

  @Test func addressesInURLs() {
    let spec = UpstreamSpec(name: "s", url: "http://vllm:8000/v")
    #expect(spec.at(address: "10.1.2.3").url == "http://10.1.2.3:8000/v")
    #expect(spec.at(address: "fd00::1").url == "http://[fd00::1]:8000/v")
    #expect(UpstreamSpec(name: "s", url: "http://10.0.0.1:8000").hostToResolve == nil)
    #expect(UpstreamSpec(name: "s", url: "http://[::1]:8000").hostToResolve == nil)
    #expect(UpstreamSpec(name: "s", url: "https://vllm:8000").hostToResolve == nil, "TLS needs its host name")
    #expect(AddressResolver.addresses(of: "localhost").contains("127.0.0.1"))
  }

  @Test func aNewPlanKeepsWhatStaysAndRetiresTheRest() {
    let a = UpstreamSpec(name: "a", url: "http://a:1", models: ["m"])
    let b = UpstreamSpec(name: "b", url: "http://b:1", models: ["m"])
    let fleet = fleet([a, b])
    let kept = fleet.upstreams[0]
    let removed = fleet.upstreams[1]
    removed.setLoad(1)
    var plan = FleetPlan(upstreams: [a, UpstreamSpec(name: "c", url: "http://c:1", models: ["n"])])
    plan.generationPolicy = .roundRobin
    fleet.apply(plan)
    #expect(fleet.upstreams.map(\.name) == ["a", "c"])
    #expect(fleet.upstreams[0] === kept)
    #expect(fleet.modelHealth().map(\.model) == ["m", "n"])
    // Retired only once its last call has ended.
    fleet.retireIdle()
    #expect(fleet.retiringCount == 1)
    removed.setLoad(0)
    fleet.retireIdle()
    #expect(fleet.retiringCount == 0)
  }
}
