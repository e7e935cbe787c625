import NIOCore

/// A token bucket: `burst` tokens at most, refilled at `perSecond`. Used for events that are
/// rare from a well-behaved client (glitches), so reading the clock for each is cheap enough.
struct TokenBucket {
  private let burst: Double
  private let perNanosecond: Double
  private var tokens: Double
  private var refilledAt: UInt64

  init(burst: Int, perSecond: Int, now: UInt64 = NIODeadline.now().uptimeNanoseconds) {
    self.burst = Double(burst)
    self.perNanosecond = Double(perSecond) / 1e9
    self.tokens = Double(burst)
    self.refilledAt = now
  }

  /// Takes one token; false when the bucket is empty.
  mutating func take(now: UInt64 = NIODeadline.now().uptimeNanoseconds) -> Bool {
    if now > refilledAt {
      tokens = min(burst, tokens + Double(now - refilledAt) * perNanosecond)
      refilledAt = now
    }
    guard tokens >= 1 else { return false }
    tokens -= 1
    return true
  }
}
