import Testing

@testable import Fleet

@Suite struct RoutingPolicyTests {
  func key(_ text: String) -> RoutingKey {
    let bytes = Array(text.utf8)
    return RoutingKey(model: "m", workload: .generation, prefix: PromptPrefix(bytes, range: 0..<bytes.count))
  }

  @Test func roundRobinFollowsTheWeights() {
    let upstreams = TestUpstreams.make(3, weights: [1, 2, 5])
    let policy = RoundRobinPolicy()
    var counts = [0, 0, 0]
    for _ in 0..<8000 { counts[policy.choose(from: upstreams, for: key("x")).id] += 1 }
    #expect(abs(counts[0] - 1000) < 30 && abs(counts[1] - 2000) < 30 && abs(counts[2] - 5000) < 30, "\(counts)")
  }

  @Test func roundRobinTakesEqualTurns() {
    let upstreams = TestUpstreams.make(3)
    let policy = RoundRobinPolicy()
    let picks = (0..<6).map { _ in policy.choose(from: upstreams, for: key("x")).id }
    #expect(picks == [0, 1, 2, 0, 1, 2])
  }

  @Test func leastLoadPrefersTheLessLoadedPerWeight() {
    let upstreams = TestUpstreams.make(2, weights: [1, 4])
    upstreams[0].setLoad(3)
    upstreams[1].setLoad(8)  // 2 per unit of weight, against 3
    #expect(LeastLoadPolicy().choose(from: upstreams, for: key("x")).id == 1)
  }

  @Test func leastLoadOfManyNeverPicksTheBusiest() {
    let upstreams = TestUpstreams.make(8)
    for (index, upstream) in upstreams.enumerated() { upstream.setLoad(index == 5 ? 100 : 1) }
    for _ in 0..<500 { #expect(LeastLoadPolicy().choose(from: upstreams, for: key("x")).id != 5) }
  }

  @Test func leastLoadSpreadsEqualLoadsEvenly() {
    let upstreams = TestUpstreams.make(8)
    var counts = [Int](repeating: 0, count: 8)
    for _ in 0..<8000 { counts[LeastLoadPolicy.choose(from: upstreams).id] += 1 }
    // 1,000 each expected, a standard deviation of ~30.
    #expect(counts.allSatisfy { abs($0 - 1000) < 150 }, "\(counts)")
  }

  @Test func spreadingRandomNumbersAreUniformAndDoNotRepeat() {
    var random = SpreadingRandom()
    var seen = Set<UInt64>()
    var buckets = [Int](repeating: 0, count: 16)
    var highBits = [Int](repeating: 0, count: 16)
    for _ in 0..<16_000 {
      let value = random.next()
      seen.insert(value)
      buckets[Int(value & 15)] += 1
      highBits[Int(value >> 60)] += 1
    }
    #expect(seen.count == 16_000)
    // 1,000 each expected, a standard deviation of ~31.
    #expect(buckets.allSatisfy { abs($0 - 1000) < 160 }, "\(buckets)")
    #expect(highBits.allSatisfy { abs($0 - 1000) < 160 }, "\(highBits)")
  }

  @Test func aSharedPrefixStaysOnOneUpstream() {
    let upstreams = TestUpstreams.make(4)
    let policy = PrefixAffinityPolicy()
    let system = String(repeating: "Shared system prompt. ", count: 40)
    let first = policy.choose(from: upstreams, for: key(system + "user one"))
    for user in 0..<20 {
      #expect(policy.choose(from: upstreams, for: key(system + "another user \(user)")).id == first.id)
    }
  }

  @Test func aHotPrefixSpillsOverPastTheLoadBound() {
    let upstreams = TestUpstreams.make(2)
    let policy = PrefixAffinityPolicy()
    let prompt = String(repeating: "Hot prompt everyone sends. ", count: 40)
    let owner = policy.choose(from: upstreams, for: key(prompt))
    owner.setLoad(10)
    upstreams.first { $0 !== owner }!.setLoad(0)
    // 10 in flight against a share of 1.25 × 11 / 2 ≈ 7: the other one takes it.
    #expect(policy.choose(from: upstreams, for: key(prompt)).id != owner.id)
    owner.setLoad(2)
    upstreams.first { $0 !== owner }!.setLoad(2)
    #expect(policy.choose(from: upstreams, for: key(prompt)).id != owner.id, "the table now remembers the other")
  }

  @Test func newPrefixesSpreadOverTheUpstreams() {
    let upstreams = TestUpstreams.make(4)
    let policy = PrefixAffinityPolicy()
    var counts = [0, 0, 0, 0]
    for prompt in 0..<400 {
      counts[policy.choose(from: upstreams, for: key(String(repeating: "prompt \(prompt) ", count: 30))).id] += 1
    }
    #expect(counts.allSatisfy { $0 > 50 }, "\(counts)")
  }

  @Test func noPrefixMeansLeastLoad() {
    let upstreams = TestUpstreams.make(2)
    upstreams[0].setLoad(5)
    upstreams[1].setLoad(0)
    #expect(PrefixAffinityPolicy().choose(from: upstreams, for: key("short")).id == 1)
  }
}
