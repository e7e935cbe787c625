import Fleet

/// Bifrost's provider block for vLLM, read as Bifrost users write it: each key is one upstream
/// (`vllm_key_config.url`, else the provider's `network_config.base_url`), serving
/// `vllm_key_config.model_name` (else the key's `models`, where "*" means whatever it lists),
/// with the key's `value` as its bearer token and its `weight`; `network_config` brings the
/// request timeout, retries and backoff, and extra headers.
enum BifrostProvider {
  /// Bifrost fields that mean nothing to the gateway: accepted and ignored.
  static let otherProviderFields: Set<String> = [
    "concurrency_and_buffer_size", "proxy_config", "send_back_raw_request", "send_back_raw_response",
    "custom_provider_config", "store_raw_request_response", "name", "id", "description", "openai_config",
  ]
  static let otherKeyFields: Set<String> = [
    "id", "name", "description", "enabled", "aliases", "blacklisted_models", "use_for_batch_api", "config_hash",
    "status",
  ]
  static let otherNetworkFields: Set<String> = [
    "insecure_skip_verify", "ca_cert_pem", "stream_idle_timeout_in_seconds", "max_conns_per_host",
    "allow_private_network", "enforce_http2", "max_idle_conns",
  ]

  struct Block {
    var upstreams: [UpstreamSpec] = []
    var failover = GatewayConfiguration.Failover()
  }

  static func read(_ provider: inout ConfigReader, name: String, environment: [String: String]) throws(ConfigError)
    -> Block
  {
    var block = Block()
    var baseURL: String? = nil
    var timeout: Double? = nil
    var headers: [String: String] = [:]
    if var network = try provider.object("network_config", ignoring: otherNetworkFields) {
      if let written = try network.string("base_url") {
        baseURL = try GatewayConfiguration.resolve(written, environment, path: network.path("base_url"))
      }
      timeout = try network.seconds("default_request_timeout_in_seconds", minimum: 0.001)
      block.failover.maxRetries = try network.integer("max_retries", minimum: 0)
      block.failover.backoffInitialMilliseconds = try network.integer(
        "retry_backoff_initial_ms", minimum: 0, maximum: ConfigReader.mostMilliseconds)
      block.failover.backoffMaxMilliseconds = try network.integer(
        "retry_backoff_max_ms", minimum: 0, maximum: ConfigReader.mostMilliseconds)
      headers = Dictionary(try network.stringMap("extra_headers") ?? [], uniquingKeysWith: { $1 })
      try network.finish()
    }
    for (index, var key) in (try provider.objects("keys", ignoring: otherKeyFields) ?? []).enumerated() {
      var url = baseURL
      var model: String? = nil
      if var vllm = try key.object("vllm_key_config") {
        if let written = try vllm.string("url") {
          url = try GatewayConfiguration.resolve(written, environment, path: vllm.path("url"))
        }
        model = try vllm.string("model_name")
        try vllm.finish()
      }
      guard let url, !url.isEmpty else {
        throw ConfigError(
          path: key.path, reason: "needs vllm_key_config.url, or the provider's network_config.base_url")
      }
      try GatewayConfiguration.validateURL(url, path: key.path)
      let listed = try key.strings("models")?.filter { $0 != "*" }
      var value: String? = nil
      if let written = try key.string("value") {
        value = try GatewayConfiguration.resolve(written, environment, path: key.path("value"))
      }
      var upstream = UpstreamSpec(name: "\(name)[\(index)] \(url)", url: url)
      upstream.apiKey = value.flatMap { $0.isEmpty ? nil : $0 }
      upstream.weight = try key.number("weight", minimum: 0) ?? 1
      if upstream.weight == 0 { upstream.weight = 0.001 }
      upstream.models = model.map { [$0] } ?? (listed?.isEmpty == false ? listed : nil)
      upstream.extraHeaders = headers
      upstream.requestTimeout = timeout.map(GatewayConfiguration.seconds)
      try key.finish()
      block.upstreams.append(upstream)
    }
    return block
  }
}
