/// What vLLM's own Prometheus /metrics says of its load: requests queued (summed over its
/// models) and how full its KV cache is (the highest over its models). Read off the request path
/// by the health checker.
struct VLLMLoad: Sendable, Equatable {
  static let mostWaiting = 1_000_000_000

  var waiting: Int
  var kvCacheUsage: Double

  init(waiting: Int, kvCacheUsage: Double) {
    self.waiting = waiting
    self.kvCacheUsage = kvCacheUsage
  }

  /// Nil when the text has neither gauge (not vLLM, or metrics off).
  init?(prometheusText text: [UInt8]) {
    var waiting = 0.0
    var usage = 0.0
    var found = false
    for line in text.split(separator: UInt8(ascii: "\n")) {
      guard line.first == UInt8(ascii: "v") else { continue }
      let isWaiting = line.starts(with: "vllm:num_requests_waiting".utf8)
      let isUsage = line.starts(with: "vllm:kv_cache_usage_perc".utf8)
      guard isWaiting || isUsage, let space = line.lastIndex(of: UInt8(ascii: " ")),
        let value = Double(String(decoding: line[(space + 1)...], as: UTF8.self)), value.isFinite
      else { continue }
      found = true
      if isWaiting { waiting += value } else { usage = max(usage, value) }
    }
    guard found else { return nil }
    // Held to what a vLLM can report: a queue past a billion or a cache fuller than full is a
    // broken exporter, and converting or summing it unchecked would trap (end the process).
    self.waiting = Int(min(max(waiting, 0), Double(Self.mostWaiting)))
    self.kvCacheUsage = min(max(usage, 0), 1)
  }
}
