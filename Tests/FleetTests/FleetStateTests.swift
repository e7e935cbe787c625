import NIOCore
import Testing

@testable import Fleet

@Suite struct FleetStateTests {
  @Test func ejectsAfterConsecutiveFailuresWithADoublingBackoff() {
    var policy = HealthPolicy()
    policy.consecutiveFailuresToEject = 3
    policy.baseEjection = .seconds(1)
    var health = UpstreamHealth()
    let now = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    var ejected = health.callFailed(now: now, policy: policy, mayEject: true)
    #expect(!ejected)
    health.callSucceeded()
    for _ in 0..<2 {
      ejected = health.callFailed(now: now, policy: policy, mayEject: true)
      #expect(!ejected)
    }
    ejected = health.callFailed(now: now, policy: policy, mayEject: true)
    #expect(ejected)
    #expect(!health.isEligible && health.ejectedUntil == now + .seconds(1))
    // A good check before the backoff ends readmits nothing; after it, it does.
    health.checked(healthy: true, now: now + .milliseconds(500), policy: policy)
    #expect(!health.isEligible)
    health.checked(healthy: true, now: now + .seconds(1), policy: policy)
    #expect(health.isEligible)
    for _ in 0..<3 { _ = health.callFailed(now: now + .seconds(2), policy: policy, mayEject: true) }
    #expect(health.ejectedUntil == now + .seconds(4), "the second ejection lasts twice as long")
  }

  @Test func theLastEligibleUpstreamIsNeverEjected() {
    var health = UpstreamHealth()
    for _ in 0..<20 {
      let ejected = health.callFailed(now: .now(), policy: HealthPolicy(), mayEject: false)
      #expect(!ejected)
    }
    #expect(health.isEligible)
  }

  @Test func twoFailedChecksMarkItDownAndOneGoodOneBringsItBack() {
    var health = UpstreamHealth()
    health.checked(healthy: false, now: .now(), policy: HealthPolicy())
    #expect(health.isEligible)
    health.checked(healthy: false, now: .now(), policy: HealthPolicy())
    #expect(!health.isEligible)
    health.checked(healthy: true, now: .now(), policy: HealthPolicy())
    #expect(health.isEligible)
  }

  @Test func candidatesByModelWithPanicAndRefusal() throws {
    let upstreams = TestUpstreams.make(2, models: nil)
    upstreams[0].state.withLock { $0.discovered = DiscoveredModels(json: Array(#"{"data":[{"id":"a"}]}"#.utf8)) }
    upstreams[1].state.withLock { $0.discovered = DiscoveredModels(json: Array(#"{"data":[{"id":"b"}]}"#.utf8)) }
    var snapshot = FleetSnapshot(upstreams: upstreams)
    #expect(try snapshot.candidates(for: "a").get().map(\.id) == [0])
    #expect(try snapshot.candidates(for: "").get().map(\.id) == [0, 1])
    #expect(throws: FleetRefusal.unknownModel("c", served: ["a", "b"])) { try snapshot.candidates(for: "c").get() }
    upstreams[0].state.withLock { $0.health.ejectedUntil = .now() + .seconds(10) }
    snapshot = FleetSnapshot(upstreams: upstreams)
    #expect(try snapshot.candidates(for: "a").get().map(\.id) == [0], "none eligible: still routed")
  }

  /// A few models are found by comparison, more by the dictionary: the same upstreams either way.
  @Test func candidatesOfFewAndOfManyModels() throws {
    for count in [1, FleetSnapshot.modelsCompared, FleetSnapshot.modelsCompared + 3] {
      let names = (0..<count).map { "model-\($0)-" + String(repeating: "x", count: $0 * 7) }
      // Upstream i serves models i and i + 1: each model has one or two upstreams.
      let upstreams = (0..<count).map { index in
        Upstream(
          id: index, name: "u\(index)", client: TestUpstreams.client, weight: 1,
          models: [names[index], names[(index + 1) % count]])
      }
      let snapshot = FleetSnapshot(upstreams: upstreams)
      for (index, name) in names.enumerated() {
        let expected = Set([index, (index + count - 1) % count])
        // A String of its own, not the one the snapshot holds.
        let asked = String(decoding: Array(name.utf8), as: UTF8.self)
        #expect(Set(try snapshot.candidates(for: asked).get().map(\.id)) == expected, "\(count) models: \(name)")
      }
      #expect(throws: FleetRefusal.self) { try snapshot.candidates(for: "model-none").get() }
    }
  }

  @Test func readsAModelList() {
    let json = Array(#"{"object":"list","data":[{"id":"x","max_model_len":4096},{"id":"y","root":"/m/y"}]}"#.utf8)
    let models = DiscoveredModels(json: json)
    #expect(models?.ids == ["x", "y"])
    #expect(models?.entries.last == Array(#"{"id":"y","root":"/m/y"}"#.utf8))
    #expect(DiscoveredModels(json: Array(#"{"error":"nope"}"#.utf8)) == nil)
    #expect(DiscoveredModels(json: Array(#"{"data":[{"object":"model"}]}"#.utf8)) == nil)
  }

  @Test func theRetryBudgetIsAFifthOfRecentCallsPlusAFloor() {
    let budget = RetryBudget(ratio: 0.2, minimum: 2)
    for _ in 0..<50 { budget.recordRequest() }
    var granted = 0
    while budget.tryRetry() { granted += 1 }
    #expect(granted == 12)
    budget.decay()  // 25 calls and 6 retries now: 2 + 0.2 × 25 = 7 allowed, one left
    #expect(budget.tryRetry())
    #expect(!budget.tryRetry())
  }
}

@Suite struct VLLMLoadTests {
  @Test func readsQueueAndCacheFillFromVLLMsMetrics() {
    let text = Array(
      """
      # HELP vllm:num_requests_waiting Number of requests waiting to be processed.
      # TYPE vllm:num_requests_waiting gauge
      vllm:num_requests_waiting{engine="0",model_name="a"} 3.0
      vllm:num_requests_waiting{engine="0",model_name="b"} 2.0
      vllm:kv_cache_usage_perc{engine="0",model_name="a"} 0.25
      vllm:kv_cache_usage_perc{engine="0",model_name="b"} 0.5
      vllm:num_requests_running{engine="0",model_name="a"} 7.0
      """.utf8)
    #expect(VLLMLoad(prometheusText: text) == VLLMLoad(waiting: 5, kvCacheUsage: 0.5))
    #expect(VLLMLoad(prometheusText: Array("# nothing here\nother_metric 1\n".utf8)) == nil)
  }

  /// vLLM 0.11 and later also export the queue by reason (capacity, deferred), whose name starts
  /// with the queue's: those samples were added to it, so a queue of 3 read as 6.
  @Test func theQueueByReasonIsNotCountedAgain() {
    let text = Array(
      """
      # HELP vllm:num_requests_waiting Number of requests waiting to be processed.
      # TYPE vllm:num_requests_waiting gauge
      vllm:num_requests_waiting{engine="0",model_name="tiny-llama"} 3.0
      # HELP vllm:num_requests_waiting_by_reason Number of waiting requests by reason.
      # TYPE vllm:num_requests_waiting_by_reason gauge
      vllm:num_requests_waiting_by_reason{engine="0",model_name="tiny-llama",reason="capacity"} 2.0
      vllm:num_requests_waiting_by_reason{engine="0",model_name="tiny-llama",reason="deferred"} 1.0
      vllm:kv_cache_usage_perc_other{engine="0"} 0.9
      vllm:kv_cache_usage_perc{engine="0",model_name="tiny-llama"} 0.25

      """.utf8)
    #expect(VLLMLoad(prometheusText: text) == VLLMLoad(waiting: 3, kvCacheUsage: 0.25))
  }

  /// The exposition format allows a timestamp after the value, spaces and braces inside quoted
  /// label values, escaped quotes, no labels at all, and CRLF line ends.
  @Test func aSampleIsReadWhateverItsLabelsAndTimestamp() {
    let lines = [
      #"vllm:num_requests_waiting{model_name="a b {c}",engine="0"} 4 1700000000000"#,
      #"vllm:num_requests_waiting{model_name="say \"}\" 9",engine="1"} 2.5"#,
      "vllm:num_requests_waiting 1",
      #"vllm:kv_cache_usage_perc{engine="0"} 0.75 1700000000000"#,
      #"vllm:kv_cache_usage_perc{engine="1"} not-a-number"#,
      #"vllm:num_requests_waiting{engine="2"}"#,
    ]
    let text = Array(lines.joined(separator: "\r\n").utf8)
    #expect(VLLMLoad(prometheusText: text) == VLLMLoad(waiting: 7, kvCacheUsage: 0.75))
    #expect(VLLMLoad(prometheusText: []) == nil)
    #expect(VLLMLoad(prometheusText: Array("vllm:num_requests_waiting{".utf8)) == nil)
    #expect(VLLMLoad(prometheusText: Array(#"vllm:num_requests_waiting{a="\"#.utf8)) == nil)
  }

  @Test func absurdFiguresAreHeldToWhatAVLLMCanReport() {
    let text = Array(
      """
      vllm:num_requests_waiting{engine="0",model_name="a"} 9.3e18
      vllm:num_requests_waiting{engine="0",model_name="b"} 1e308
      vllm:kv_cache_usage_perc{engine="0",model_name="a"} 1e16
      """.utf8)
    let load = VLLMLoad(prometheusText: text)
    #expect(load == VLLMLoad(waiting: VLLMLoad.mostWaiting, kvCacheUsage: 1))
    #expect(
      VLLMLoad(prometheusText: Array("vllm:num_requests_waiting -4\nvllm:kv_cache_usage_perc -1\n".utf8))
        == VLLMLoad(waiting: 0, kvCacheUsage: 0))
    // Routing over such figures compares loads without overflowing.
    let upstreams = TestUpstreams.make(3)
    for upstream in upstreams { upstream.recordLoad(load) }
    #expect(upstreams[0].load == 2 * VLLMLoad.mostWaiting + 1)
    _ = LeastLoadPolicy.choose(from: upstreams)
  }

  @Test func queuedRequestsAndAFullCacheCountAsLoad() {
    let upstreams = TestUpstreams.make(2)
    upstreams[0].setLoad(1)
    upstreams[1].setLoad(1)
    upstreams[0].recordLoad(VLLMLoad(waiting: 6, kvCacheUsage: 0.1))
    #expect(LeastLoadPolicy.choose(from: upstreams).id == 1)
    upstreams[0].recordLoad(nil)
    upstreams[1].recordLoad(VLLMLoad(waiting: 0, kvCacheUsage: 0.95))
    #expect(upstreams[1].load == 3 && LeastLoadPolicy.choose(from: upstreams).id == 0)
  }
}
