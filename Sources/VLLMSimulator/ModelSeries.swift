import Foundation

/// One served model's numbers on /metrics, labelled model_name as vLLM labels them. A model taken
/// out of service keeps its counters, as a Prometheus counter never goes away.
struct ModelSeries: Sendable {
  var name: String
  /// When the series was first served, in seconds since 1970: prometheus_client's `_created`.
  var created = Date().timeIntervalSince1970
  var running = 0
  var waiting = 0
  var promptTokens = 0
  var generationTokens = 0
  /// Prompt tokens looked up in the prefix cache, and those found there.
  var prefixCacheQueries = 0
  var prefixCacheHits = 0
  /// Finished requests by vLLM's finished_reason: stop, length or abort.
  var successes: [String: Int] = [:]

  init(name: String) {
    self.name = name
  }
}
