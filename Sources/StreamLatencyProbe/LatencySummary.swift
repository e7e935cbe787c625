/// The probe's result, written as JSON: counts, and percentiles in microseconds.
struct LatencySummary: Codable, Sendable {
  /// Streams measured: all but those started during the warm-up.
  var streams: Int
  /// Streams started in all, warm-up included.
  var allStreams: Int
  /// Streams that failed, warm-up included.
  var failed: Int
  var chunks: Int
  var chunkDelay: Percentiles
  var firstChunkDelay: Percentiles
  var timeToFirstToken: Percentiles

  enum CodingKeys: String, CodingKey {
    case streams, failed, chunks
    case allStreams = "all_streams"
    case chunkDelay = "chunk_delay_us"
    case firstChunkDelay = "first_chunk_delay_us"
    case timeToFirstToken = "ttft_us"
  }

  var line: String {
    func text(_ value: Double?) -> String { value.map { "\($0)" } ?? "-" }
    let counts = "streams \(streams) (of \(allStreams)) failed \(failed) chunks \(chunks)"
    let chunk = "chunk delay µs p50 \(text(chunkDelay.p50)) p99 \(text(chunkDelay.p99)) max \(text(chunkDelay.max))"
    let first = "first chunk delay µs p99 \(text(firstChunkDelay.p99))"
    let ttft = "TTFT µs p50 \(text(timeToFirstToken.p50)) p99 \(text(timeToFirstToken.p99))"
    return [counts, chunk, first, ttft].joined(separator: "; ")
  }

}

/// Percentiles of a list of durations, in microseconds with 0.1 µs resolution; nil when empty.
struct Percentiles: Codable, Sendable {
  var p50: Double?
  var p90: Double?
  var p99: Double?
  var max: Double?

  init(nanoseconds values: [Int64]) {
    let sorted = values.sorted()
    func at(_ fraction: Double) -> Double? {
      guard !sorted.isEmpty else { return nil }
      let value = sorted[Swift.min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
      return (Double(value) / 100).rounded() / 10
    }
    p50 = at(0.5)
    p90 = at(0.9)
    p99 = at(0.99)
    max = sorted.last.map { (Double($0) / 100).rounded() / 10 }
  }
}
