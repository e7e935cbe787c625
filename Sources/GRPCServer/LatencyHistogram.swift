import Synchronization

/// A lock-free latency histogram for Prometheus: every connection's event loop records into it
/// with two relaxed atomic additions. Buckets run from 1 µs to 7 s in steps of about 1.5x,
/// fine enough to read a p99 off to within a bucket's width. Not a class: held in its owner
/// (CallStatistics), an observation reaches it without a retain and release of its own, and its
/// bounds are its own too, not a global checked for being made on each use (swift_once): about
/// 200 instructions a unary call with statistics on, three observations (callgrind).
public struct LatencyHistogram: ~Copyable, Sendable {
  /// Upper bounds of the buckets, in nanoseconds (1, 1.5, 2, 3, 5 and 7 times each power of ten
  /// from 1 µs to 1 s); a last, unbounded bucket follows. A literal, so the array is laid out in
  /// the binary: made by a closure, each observation first checked it had been made (swift_once).
  public static let bounds: [UInt64] = [
    1_000, 1_500, 2_000, 3_000, 5_000, 7_000,
    10_000, 15_000, 20_000, 30_000, 50_000, 70_000,
    100_000, 150_000, 200_000, 300_000, 500_000, 700_000,
    1_000_000, 1_500_000, 2_000_000, 3_000_000, 5_000_000, 7_000_000,
    10_000_000, 15_000_000, 20_000_000, 30_000_000, 50_000_000, 70_000_000,
    100_000_000, 150_000_000, 200_000_000, 300_000_000, 500_000_000, 700_000_000,
    1_000_000_000, 1_500_000_000, 2_000_000_000, 3_000_000_000, 5_000_000_000, 7_000_000_000,
  ]
  /// One counter a bucket, `bounds.count + 1`, held in the object: an array of atomic objects
  /// cost a retain and a release of the array and of the counter each observation (callgrind).
  private let buckets = InlineArray<43, Atomic<Int>> { _ in Atomic(0) }
  private let sumNanoseconds = Atomic<Int>(0)
  /// By a value's bit length (0 to 64), the first bucket whose bound is at or above the least
  /// value of that length: a value's bucket is that one or at most two after it.
  private let firstBucketByBitLength: InlineArray<65, UInt8>
  /// `bounds`, kept here for `bucket(of:)`.
  private let upperBounds: InlineArray<42, UInt64>

  public init() {
    let bounds = Self.bounds
    firstBucketByBitLength = InlineArray { length in
      let least: UInt64 = length == 0 ? 0 : 1 << (length - 1)
      return UInt8(bounds.firstIndex { least <= $0 } ?? bounds.count)
    }
    upperBounds = InlineArray { bounds[$0] }
  }

  public func observe(nanoseconds: UInt64) {
    buckets[bucket(of: nanoseconds)].wrappingAdd(1, ordering: .relaxed)
    sumNanoseconds.wrappingAdd(Int(truncatingIfNeeded: nanoseconds), ordering: .relaxed)
  }

  /// The bucket counting `nanoseconds`: the first whose bound is at or above it, else the last.
  /// Started where its bit length says: halving over all the bounds took six comparisons and
  /// about 70 instructions an observation (callgrind).
  func bucket(of nanoseconds: UInt64) -> Int {
    let bounds = upperBounds.span
    var bucket = Int(firstBucketByBitLength[UInt64.bitWidth &- nanoseconds.leadingZeroBitCount])
    while bucket < bounds.count, nanoseconds > bounds[bucket] { bucket &+= 1 }
    return bucket
  }

  /// Observations so far, by bucket (the last one unbounded).
  public var counts: [Int] { (0..<buckets.count).map { buckets[$0].load(ordering: .relaxed) } }

  /// The histogram in Prometheus' text format, in seconds, buckets cumulative.
  public func prometheusText(name: String, help: String) -> String {
    var text = "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
    var cumulative = 0
    let counts = self.counts
    for (index, bound) in Self.bounds.enumerated() {
      cumulative += counts[index]
      text += "\(name)_bucket{le=\"\(Self.seconds(bound))\"} \(cumulative)\n"
    }
    cumulative += counts[Self.bounds.count]
    text += "\(name)_bucket{le=\"+Inf\"} \(cumulative)\n"
    text += "\(name)_sum \(Self.seconds(UInt64(max(sumNanoseconds.load(ordering: .relaxed), 0))))\n"
    text += "\(name)_count \(cumulative)\n"
    return text
  }

  private static func seconds(_ nanoseconds: UInt64) -> String {
    "\(Double(nanoseconds) / 1e9)"
  }
}
