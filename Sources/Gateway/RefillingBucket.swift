/// A rate over a minute as a bucket that refills continuously up to its capacity (a minute's
/// worth). Tokens are charged after the fact, so the level may go below zero; nothing new starts
/// until it is above zero again.
struct RefillingBucket: Sendable {
  let capacity: Double
  let perNanosecond: Double
  private(set) var level: Double
  private var updatedAt: UInt64

  init(perMinute: Double, now: UInt64) {
    capacity = perMinute
    perNanosecond = perMinute / 60e9
    level = perMinute
    updatedAt = now
  }

  mutating func refill(now: UInt64) {
    guard now > updatedAt else { return }
    level = min(capacity, level + Double(now - updatedAt) * perNanosecond)
    updatedAt = now
  }

  /// Takes `amount` if the level allows; else the seconds until it would.
  mutating func take(_ amount: Double, now: UInt64) -> Double? {
    refill(now: now)
    guard level < amount else {
      level -= amount
      return nil
    }
    return (amount - level) / perNanosecond / 1e9
  }

  /// Seconds until the level is above zero (0 when it is).
  mutating func waitForPositive(now: UInt64) -> Double {
    refill(now: now)
    return level > 0 ? 0 : (-level + 1) / perNanosecond / 1e9
  }

  mutating func charge(_ amount: Double, now: UInt64) {
    refill(now: now)
    level -= amount
  }
}
