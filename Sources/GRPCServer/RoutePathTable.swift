#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The routes by the bytes of their paths, so that a request's `:path` is matched as nghttp2
/// hands it over, without first becoming a String: an open-addressing table indexed by the
/// path's FNV-1a hash, each slot compared byte for byte. It replaced a `[UInt64: [Route]]`
/// dictionary, whose lookup hashed the hash again (SipHash, about 270 instructions) and copied
/// the candidate's path String to compare it (about 560 instructions a call in all, callgrind).
struct RoutePathTable: Sendable {
  private struct Entry: Sendable {
    let path: [UInt8]
    let route: Route
  }

  private var entries: [Entry] = []
  /// Indices into `entries`, -1 where empty; a power of two long, at most half full.
  private var slots: [Int32] = [-1]

  /// Adds `route`, replacing a route with the same path.
  mutating func insert(_ route: Route) {
    let path = Array(route.path.utf8)
    if let index = entries.firstIndex(where: { $0.path == path }) {
      entries[index] = Entry(path: path, route: route)
      return
    }
    entries.append(Entry(path: path, route: route))
    if entries.count * 2 > slots.count {
      slots = Array(repeating: -1, count: slots.count * 2)
      for index in entries.indices { place(index) }
    } else {
      place(entries.count - 1)
    }
  }

  private mutating func place(_ index: Int) {
    let mask = slots.count - 1
    var slot = Int(truncatingIfNeeded: Self.hash(entries[index].path)) & mask
    while slots[slot] >= 0 { slot = (slot + 1) & mask }
    slots[slot] = Int32(index)
  }

  func route(forPath bytes: UnsafeRawBufferPointer) -> Route? {
    let mask = slots.count &- 1
    var slot = Int(truncatingIfNeeded: Self.hash(bytes)) & mask
    while true {
      let index = Int(slots[slot])
      guard index >= 0 else { return nil }
      // In place, not `let entry = entries[index]`: a copy retains and releases its path and route.
      let matches = entries[index].path.withUnsafeBytes { stored in
        stored.count == bytes.count
          && (bytes.isEmpty || memcmp(stored.baseAddress!, bytes.baseAddress!, bytes.count) == 0)
      }
      if matches { return entries[index].route }
      slot = (slot &+ 1) & mask
    }
  }

  private static func hash(_ bytes: [UInt8]) -> UInt64 {
    bytes.withUnsafeBytes { hash($0) }
  }

  /// The length and the last sixteen bytes, mixed: the paths of one service differ in their
  /// method's name, at the end. FNV-1a over every byte of a 48-byte path cost about 240
  /// instructions a call (callgrind); a path that collides costs a probe, never a wrong route.
  private static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    let count = bytes.count
    var hash = UInt64(truncatingIfNeeded: count) &* 0x9e37_79b9_7f4a_7c15
    if count >= 16 {
      hash ^= bytes.loadUnaligned(fromByteOffset: count &- 16, as: UInt64.self)
      hash = (hash ^ (hash >> 29)) &* 0xbf58_476d_1ce4_e5b9
      hash ^= bytes.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
    } else {
      for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
    }
    hash = (hash ^ (hash >> 32)) &* 0x94d0_49bb_1331_11eb
    return hash ^ (hash >> 29)
  }
}
