import Fleet
import NIOCore
import Testing

@testable import GatewayConfig

@Suite struct GatewayConfigurationTests {
  let environment = ["KEY": "sk-1", "URL": "http://10.0.0.9:8000"]

  func parse(_ text: String) throws(ConfigError) -> GatewayConfiguration {
    try GatewayConfiguration.parse(text, environment: environment)
  }

  func refusal(_ text: String) -> String? {
    do {
      _ = try parse(text)
      return nil
    } catch {
      return error.description
    }
  }

  @Test func readsEverySectionFromYAML() throws {
    let configuration = try parse(
      """
      listen: 127.0.0.1:6000
      upstreams:
        - name: a
          url: http://h1:8000
          api_key: env.KEY
          weight: 2
          models: [m1, m2]
          extra_headers: {x-team: t}
          request_timeout_seconds: 30
        - url: env.URL
      routing: {generation: round_robin, pooling: prefix}
      health: {check_interval_seconds: 0.5, consecutive_failures_to_eject: 3, base_ejection_seconds: 2}
      limits: {max_upstream_requests: 10, upstream_stall_timeout_seconds: 0}
      """)
    #expect(configuration.listen == "127.0.0.1:6000")
    #expect(
      configuration.upstreams == [
        .init(
          name: "a", url: "http://h1:8000", apiKey: "sk-1", weight: 2, models: ["m1", "m2"],
          extraHeaders: ["x-team": "t"], requestTimeout: .seconds(30)),
        .init(name: "http://10.0.0.9:8000", url: "http://10.0.0.9:8000"),
      ])
    #expect(configuration.generationPolicy == .roundRobin && configuration.poolingPolicy == .prefix)
    #expect(configuration.health.checkInterval == .milliseconds(500))
    #expect(configuration.health.consecutiveFailuresToEject == 3)
    #expect(configuration.health.baseEjection == .seconds(2))
    #expect(configuration.limits.maxUpstreamRequests == 10 && configuration.limits.upstreamStallTimeoutSeconds == 0)
  }

  @Test func readsBifrostsProviderBlockAsItIs() throws {
    let configuration = try parse(
      """
      {"$schema": "https://www.getbifrost.ai/schema",
       "providers": {"vllm": {
         "keys": [
           {"id": "k1", "name": "one", "value": "env.KEY", "models": ["llama"], "weight": 1.0,
            "vllm_key_config": {"url": "http://a:8000", "model_name": "llama"}},
           {"name": "two", "value": "", "models": ["*"], "weight": 3,
            "vllm_key_config": {"url": "http://b:8000"}}],
         "network_config": {"base_url": "http://unused:1", "default_request_timeout_in_seconds": 60,
           "max_retries": 4, "retry_backoff_initial_ms": 50, "retry_backoff_max_ms": 800,
           "extra_headers": {"x-a": "1"}},
         "concurrency_and_buffer_size": {"concurrency": 10, "buffer_size": 100}}}}
      """)
    #expect(configuration.upstreams.map(\.url) == ["http://a:8000", "http://b:8000"])
    #expect(configuration.upstreams[0].models == ["llama"] && configuration.upstreams[1].models == nil)
    #expect(configuration.upstreams[0].apiKey == "sk-1" && configuration.upstreams[1].apiKey == nil)
    #expect(configuration.upstreams[1].weight == 3)
    #expect(configuration.upstreams[0].extraHeaders == ["x-a": "1"])
    #expect(configuration.upstreams[0].requestTimeout == .seconds(60))
    #expect(
      configuration.failover
        == .init(maxRetries: 4, backoffInitialMilliseconds: 50, backoffMaxMilliseconds: 800))
  }

  @Test func refusesWithTheJSONPathAndTheReason() {
    #expect(refusal(#"{"upstreams": [{"url": "http://a:1", "wieght": 1}]}"#) == "$.upstreams[0].wieght: unknown key")
    #expect(
      refusal(#"{"upstreams": [{"url": "http://a:1", "weight": -1}]}"#)?.hasPrefix(
        "$.upstreams[0].weight: must be at least") == true)
    #expect(refusal(#"{"upstreams": [{"name": "x"}]}"#) == "$.upstreams[0]: an upstream needs a url")
    #expect(
      refusal(#"{"upstreams": [{"url": "env.NOPE"}]}"#)
        == "$.upstreams[0].url: the environment variable NOPE is not set")
    #expect(refusal(#"{"upstreams": {"url": "http://a:1"}}"#) == "$.upstreams: must be a list")
    #expect(
      refusal(#"{"limits": {"max_upstream_requests": 1.5}}"#)
        == "$.limits.max_upstream_requests: must be a whole number")
    #expect(
      refusal(#"{"routing": {"generation": "fast"}}"#)?.hasPrefix(#"$.routing.generation: unknown policy "fast""#)
        == true)
    #expect(
      refusal(#"{"upstreams": [{"url": "http://a:1"}, {"url": "http://a:1"}]}"#)
        == #"$.upstreams[1].name: "http://a:1" names two upstreams"#)
    #expect(refusal(#"{"upstreams": [}"#)?.hasPrefix("$: not valid JSON") == true)
    #expect(refusal("upstreams: [a: b: c]")?.hasPrefix("$: not valid YAML") == true)
    #expect(refusal(#"{"a": 1, "a": 2}"#) == "$.a: given twice")
    #expect(
      refusal(#"{"auth": {"keys": [{"id": "k"}]}}"#)
        == "$.auth.keys[0]: give exactly one of sha256, key, key_file and client_certificate_cn")
    #expect(
      refusal(#"{"auth": {"keys": [{"id": "k", "sha256": "abc"}]}}"#)
        == "$.auth.keys[0].sha256: must be 64 hexadecimal digits")
    #expect(
      refusal(#"{"auth": {"keys": [{"id": "k", "key": "a"}, {"id": "k", "key": "b"}]}}"#)
        == #"$.auth.keys[1].id: "k" names two keys"#)
  }

  @Test func keysAreKeptOnlyAsTheirDigests() throws {
    let configuration = try parse(
      #"{"auth": {"keys": [{"id": "a", "key": "env.KEY", "models": ["m"], "requests_per_minute": 60, "tokens_per_minute": 1000, "max_concurrent_streams": 2}], "protect_health_and_reflection": true}}"#
    )
    let key = try #require(configuration.keys.first)
    #expect(key.id == "a" && key.models == ["m"] && key.requestsPerMinute == 60 && key.tokensPerMinute == 1000)
    #expect(key.maxConcurrentStreams == 2 && configuration.protectsStandardServices)
    // SHA-256("sk-1")
    #expect(
      key.sha256 == ClientKeyReader.bytes(hex: "0f2c10bf3d128c719c6bfa4ecbae94b7fceebaea6e4438fef38a90e5acc326f3"))
  }
}
