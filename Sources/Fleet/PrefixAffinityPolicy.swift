import Synchronization

/// Prompts that share a prefix go to the upstream that served that prefix last, so vLLM's prefix
/// cache hits there, within a load bound (consistent hashing with bounded loads, Mirrokni et al.):
/// no upstream takes more than `loadBound` times its weighted share of the calls in flight, plus
/// one. A prefix never seen goes where the rendezvous hash of its first block points, so the first
/// calls of a new system prompt already converge on one upstream; past the bound, the next in
/// that hash order takes it, then the least loaded.
final class PrefixAffinityPolicy: RoutingPolicy {
  static let loadBound = 1.25
  /// Every fourth block and the last are remembered: prefixes match at 4-block (512-byte)
  /// granularity for a quarter of the table work.
  static let stride = 4
  private let table = Mutex(PrefixTable(capacity: 100_000))

  func choose(from candidates: [Upstream], for key: RoutingKey) -> Upstream {
    let hashes = key.prefix.hashes
    guard candidates.count > 1, !hashes.isEmpty else { return LeastLoadPolicy.choose(from: candidates) }
    let totalLoad = candidates.reduce(0) { $0 + $1.load }
    let totalWeight = candidates.reduce(0) { $0 + $1.weight }
    func hasRoom(_ upstream: Upstream) -> Bool {
      let share = Self.loadBound * Double(totalLoad + 1) * upstream.weight / totalWeight
      return Double(upstream.load) < share.rounded(.up) + 1
    }
    let positions = Self.rememberedPositions(count: hashes.count)
    let ownerID: Int? = table.withLock { table in
      for position in positions.reversed() {
        if let id = table[hashes[position]], candidates.contains(where: { $0.id == id }) { return id }
      }
      return nil
    }
    var chosen: Upstream? = nil
    if let ownerID, let owner = candidates.first(where: { $0.id == ownerID }), hasRoom(owner) {
      chosen = owner
    } else {
      // The highest rendezvous score among those with room: one pass, one hash per candidate.
      let first = hashes[0]
      var best: (upstream: Upstream, score: UInt64)? = nil
      for upstream in candidates where hasRoom(upstream) {
        let score = PromptPrefix.mix(first ^ UInt64(upstream.id))
        if let current = best, current.score >= score { continue }
        best = (upstream, score)
      }
      chosen = best?.upstream
    }
    let upstream = chosen ?? LeastLoadPolicy.choose(from: candidates)
    table.withLock { table in
      for position in positions { table[hashes[position]] = upstream.id }
    }
    return upstream
  }

  static func rememberedPositions(count: Int) -> [Int] {
    var positions = Array(Swift.stride(from: stride - 1, to: count, by: stride))
    if positions.last != count - 1 { positions.append(count - 1) }
    return positions
  }
}

/// Block hash → the upstream that last served it, bounded: two generations, the older dropped
/// when the newer fills, which keeps what was used recently at a dictionary's cost.
struct PrefixTable {
  private var current: [UInt64: Int] = [:]
  private var previous: [UInt64: Int] = [:]
  let capacity: Int

  init(capacity: Int) {
    self.capacity = capacity
  }

  subscript(hash: UInt64) -> Int? {
    get { current[hash] ?? previous[hash] }
    set {
      current[hash] = newValue
      if current.count >= capacity / 2 {
        previous = current
        current = [:]
      }
    }
  }
}
