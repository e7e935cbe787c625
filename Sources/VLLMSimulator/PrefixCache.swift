/// The prompt blocks one simulated instance keeps for reuse: at most `capacity` block hashes,
/// the least recently used evicted first. Not thread-safe: SimulatorEngine holds it under its lock.
struct PrefixCache {
  /// Blocks kept at most; 0 keeps none.
  let capacity: Int
  /// Where each cached hash sits in `nodes`.
  private var slots: [UInt64: Int] = [:]
  /// A doubly linked list in an array, from `oldest` (evicted next) to `newest`.
  private var nodes: [Node] = []
  private var oldest = -1
  private var newest = -1

  private struct Node {
    var hash: UInt64
    var older: Int
    var newer: Int
  }

  init(capacity: Int) {
    self.capacity = max(0, capacity)
  }

  /// Blocks cached now.
  var count: Int { slots.count }

  /// How many of `hashes`, from the first, were cached; then caches them all. The first block is
  /// made the most recently used, as vLLM frees a finished request's blocks tail first, so a
  /// shared prefix outlives the different endings that follow it.
  mutating func lookUpAndInsert(_ hashes: [UInt64]) -> Int {
    guard capacity > 0 else { return 0 }
    var hits = 0
    while hits < hashes.count, slots[hashes[hits]] != nil { hits += 1 }
    for hash in hashes.reversed() { touch(hash) }
    return hits
  }

  /// Makes `hash` the newest block, inserting it (and evicting the oldest when full) if absent.
  private mutating func touch(_ hash: UInt64) {
    if let index = slots[hash] {
      unlink(index)
      link(index)
      return
    }
    let index: Int
    if slots.count < capacity {
      index = nodes.count
      nodes.append(Node(hash: hash, older: -1, newer: -1))
    } else {
      // Full: the oldest node is reused for the new block.
      index = oldest
      unlink(index)
      slots[nodes[index].hash] = nil
      nodes[index].hash = hash
    }
    slots[hash] = index
    link(index)
  }

  private mutating func unlink(_ index: Int) {
    let node = nodes[index]
    if node.older >= 0 { nodes[node.older].newer = node.newer } else { oldest = node.newer }
    if node.newer >= 0 { nodes[node.newer].older = node.older } else { newest = node.older }
  }

  private mutating func link(_ index: Int) {
    nodes[index].older = newest
    nodes[index].newer = -1
    if newest >= 0 { nodes[newest].newer = index } else { oldest = index }
    newest = index
  }
}
