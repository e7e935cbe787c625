/// Every measurement of a run: each stamp's one-way delay, and each stream's first stamp and
/// time to first token. Lives on the probe's one event loop.
final class LatencyRecorder {
  private var chunkDelays: [Int64] = []
  private var firstChunkDelays: [Int64] = []
  private var timesToFirstToken: [Int64] = []
  private var ended = 0
  private var measured = 0
  private var failed = 0

  /// Scans bytes of a stream that arrived at `now` and records the stamps they complete.
  func receive(_ bytes: UnsafeRawBufferPointer, on timing: inout StreamTiming, at now: Int64) {
    guard timing.measured else { return }
    var first: Int64? = nil
    timing.scanner.scan(bytes) { stamp in
      chunkDelays.append(now - stamp)
      if first == nil { first = stamp }
    }
    guard let first, timing.firstStampAt == nil else { return }
    timing.firstStampAt = now
    firstChunkDelays.append(now - first)
    if let sentAt = timing.sentAt { timesToFirstToken.append(now - sentAt) }
  }

  /// A stream that ended, well or badly; or, with `timing` nil, one that could not start.
  func streamEnded(_ timing: StreamTiming?, success: Bool) {
    ended += 1
    if timing?.measured ?? true { measured += 1 }
    if !success { failed += 1 }
  }

  /// `open` streams had not ended when the run stopped: they count as failed.
  func summary(open: Int) -> LatencySummary {
    LatencySummary(
      streams: measured + open, allStreams: ended + open, failed: failed + open, chunks: chunkDelays.count,
      chunkDelay: Percentiles(nanoseconds: chunkDelays), firstChunkDelay: Percentiles(nanoseconds: firstChunkDelays),
      timeToFirstToken: Percentiles(nanoseconds: timesToFirstToken))
  }
}
