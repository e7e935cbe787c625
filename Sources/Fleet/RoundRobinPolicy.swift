import Synchronization

/// Each call to the next upstream in turn, in proportion to their weights: the n-th call lands
/// at n × φ (mod 1) along the candidates' cumulative weights, a low-discrepancy walk that visits
/// each upstream as often as its weight says with no state but a counter.
final class RoundRobinPolicy: RoutingPolicy {
  private let counter = Atomic<UInt64>(0)

  func choose(from candidates: [Upstream], for key: RoutingKey) -> Upstream {
    let turn = counter.wrappingAdd(1, ordering: .relaxed).oldValue
    if candidates.count == 1 { return candidates[0] }
    if candidates.allSatisfy({ $0.weight == candidates[0].weight }) {
      return candidates[Int(turn % UInt64(candidates.count))]
    }
    let total = candidates.reduce(0) { $0 + $1.weight }
    let golden = 0.618_033_988_749_894_8
    var point = (Double(turn) * golden).truncatingRemainder(dividingBy: 1) * total
    for upstream in candidates {
      point -= upstream.weight
      if point < 0 { return upstream }
    }
    return candidates[candidates.count - 1]
  }
}
