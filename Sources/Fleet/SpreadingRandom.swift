import Synchronization

/// Numbers that spread calls over upstreams (which two the least-load policy compares), not
/// secrets: a SplitMix64 sequence shared by all threads, advanced by one relaxed atomic addition.
/// The standard library's generator asks the kernel (getrandom) for every number, which made two
/// system calls of each call routed by least load (callgrind: `syscall` twice a call).
struct SpreadingRandom: RandomNumberGenerator {
  /// Seeded once from the system's generator, so that two gateways do not pair the same upstreams.
  private static let state = Atomic<UInt64>(UInt64.random(in: .min ... .max))

  mutating func next() -> UInt64 {
    var mixed = Self.state.wrappingAdd(0x9E37_79B9_7F4A_7C15, ordering: .relaxed).newValue
    mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
    mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
    return mixed ^ (mixed >> 31)
  }
}
