/// GET /metrics: the vLLM gauges and counters a fleet router reads, with vLLM 0.32's names, HELP
/// texts and labels (model_name, engine="0"), in the order vLLM prints them (compare
/// tests/fixtures/vllm-recordings/metrics_sample.txt). Every model the engine has served gets its
/// own series; the KV cache is the engine's, so each model shows the same usage.
enum MetricsPage {
  static let contentType = "text/plain; version=0.0.4; charset=utf-8"
  /// vLLM's finished_reason label values the simulator can produce.
  private static let finishedReasons = ["stop", "length", "abort"]

  static func render(_ snapshot: SimulatorEngine.Snapshot) -> [UInt8] {
    let series = snapshot.series
    func labels(_ model: ModelSeries) -> [(String, String)] { [("model_name", model.name), ("engine", "0")] }
    func gauge(_ value: (ModelSeries) -> Double) -> [([(String, String)], Double)] {
      series.map { (labels($0), value($0)) }
    }
    func counter(_ value: (ModelSeries) -> Int) -> [(labels: [(String, String)], value: Double, created: Double)] {
      series.map { (labels($0), Double(value($0)), $0.created) }
    }

    var page = PrometheusText()
    page.gauge(
      "vllm:num_requests_running", help: "Number of requests in model execution batches.", gauge { Double($0.running) })
    page.gauge(
      "vllm:num_requests_waiting", help: "Number of requests waiting to be processed.", gauge { Double($0.waiting) })
    page.gauge(
      "vllm:kv_cache_usage_perc", help: "KV-cache usage. 1 means 100 percent usage.",
      gauge { _ in snapshot.kvCacheUsage })
    page.counter(
      "vllm:prefix_cache_queries", help: "Prefix cache queries, in terms of number of queried tokens.",
      counter(\.prefixCacheQueries))
    page.counter(
      "vllm:prefix_cache_hits", help: "Prefix cache hits, in terms of number of cached tokens.",
      counter(\.prefixCacheHits))
    page.counter("vllm:prompt_tokens", help: "Number of prefill tokens processed.", counter(\.promptTokens))
    page.counter("vllm:generation_tokens", help: "Number of generation tokens processed.", counter(\.generationTokens))
    page.counter(
      "vllm:request_success", help: "Count of successfully processed requests.",
      series.flatMap { model in
        finishedReasons.map { reason in
          (labels(model) + [("finished_reason", reason)], Double(model.successes[reason, default: 0]), model.created)
        }
      })
    // What a prefix-aware router needs to mirror the cache: its block size and whether it is on.
    page.gauge(
      "vllm:cache_config_info", help: "Information of the LLMEngine CacheConfig",
      [
        (
          [
            ("block_size", String(PromptBlocks.blockSize)),
            ("enable_prefix_caching", snapshot.cachesPrefixes ? "True" : "False"), ("engine", "0"),
            ("num_gpu_blocks", String(snapshot.kvCacheBlocks)),
          ], 1
        )
      ])
    return Array(page.text.utf8)
  }
}
