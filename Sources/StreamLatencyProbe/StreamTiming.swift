/// The times of one stream: when its request went out, and the stamps found in what came back.
struct StreamTiming {
  /// Whether the stream counts in the results (it did not start during the warm-up).
  var measured: Bool
  /// CLOCK_MONOTONIC just before the request (its last byte) was written; nil until then.
  var sentAt: Int64? = nil
  /// When the first stamp arrived; nil until one has.
  var firstStampAt: Int64? = nil
  var scanner = StampScanner()

  init(measured: Bool) {
    self.measured = measured
  }
}
