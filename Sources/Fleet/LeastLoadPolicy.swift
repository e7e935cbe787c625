/// The power of two choices: two candidates at random, the less loaded (calls in flight per unit
/// of weight) wins. Nearly as good as asking every upstream, without herding every call onto the
/// one that looked idle a moment ago.
struct LeastLoadPolicy: RoutingPolicy {
  func choose(from candidates: [Upstream], for key: RoutingKey) -> Upstream {
    Self.choose(from: candidates)
  }

  static func choose(from candidates: [Upstream]) -> Upstream {
    switch candidates.count {
    case 1: return candidates[0]
    case 2: return candidates[0].weightedLoad <= candidates[1].weightedLoad ? candidates[0] : candidates[1]
    default:
      var random = SpreadingRandom()
      let first = Int.random(in: 0..<candidates.count, using: &random)
      var second = Int.random(in: 0..<(candidates.count - 1), using: &random)
      if second >= first { second += 1 }
      let a = candidates[first]
      let b = candidates[second]
      return a.weightedLoad <= b.weightedLoad ? a : b
    }
  }
}
