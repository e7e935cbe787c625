import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// The one engine behind all of a simulator's connections, as a vLLM process has one: the models
/// it answers to, a batch of at most max-num-seqs running generations with the rest waiting in
/// arrival order, its prefix cache, and the counters /metrics reports. Connections on any event
/// loop share it, so everything is under one lock; callbacks run after the lock is released.
final class SimulatorEngine: Sendable {
  /// A generation that asks to run.
  struct Job: Sendable {
    var model: String
    var promptTokens: Int
    /// PromptBlocks.hashes of its prompt; empty when the prefix cache is off.
    var blockHashes: [UInt64]
    /// What it holds in the KV cache while running: its prompt and all it will generate.
    var heldTokens: Int
  }

  /// What a generation learns when it starts running.
  struct Admission: Sendable {
    var id: Int
    /// Prompt tokens found in the prefix cache, and those left to prefill.
    var cachedTokens: Int
    var computedTokens: Int
  }

  private struct Waiter {
    var id: Int
    var job: Job
    var start: @Sendable (Admission) -> Void
  }

  private struct Running {
    var model: String
    var heldTokens: Int
  }

  private struct State {
    var models: [String]
    /// What /health answers; an admin call turns it off, as an engine that is going bad would.
    var healthy = true
    var nextID = 0
    var running: [Int: Running] = [:]
    var waiting = CircularBuffer<Waiter>()
    var heldTokens = 0
    var cache: PrefixCache
    var series: [String: ModelSeries] = [:]
    /// Series in the order their models were first served, so /metrics is stable.
    var seriesOrder: [String] = []

    mutating func addSeries(for models: [String]) {
      for model in models where series[model] == nil {
        series[model] = ModelSeries(name: model)
        seriesOrder.append(model)
      }
    }
  }

  /// What /metrics shows, read at one instant.
  struct Snapshot {
    var series: [ModelSeries]
    /// Fraction of the KV cache held by running generations, as vLLM's kv_cache_usage_perc
    /// counts it (cached blocks nobody runs on are free, so an idle engine reads 0).
    var kvCacheUsage: Double
    var cachesPrefixes: Bool
    var kvCacheBlocks: Int
  }

  /// Generations running at once; 0: no limit.
  let maxNumSeqs: Int
  let cachesPrefixes: Bool
  /// The KV cache size the usage gauge is measured against.
  let kvCacheTokens: Int
  private let state: NIOLockedValueBox<State>

  init(configuration: SimulatorConfiguration) {
    maxNumSeqs = max(0, configuration.maxNumSeqs)
    cachesPrefixes = configuration.prefixCacheTokens > 0
    kvCacheTokens = cachesPrefixes ? configuration.prefixCacheTokens : SimulatorConfiguration.defaultKVCacheTokens
    let models = configuration.models.isEmpty ? [configuration.model] : configuration.models
    var initial = State(
      models: models, cache: PrefixCache(capacity: max(0, configuration.prefixCacheTokens) / PromptBlocks.blockSize))
    initial.addSeries(for: models)
    state = NIOLockedValueBox(initial)
  }

  // MARK: Models

  /// The served model names, the default first.
  var models: [String] { state.withLockedValue { $0.models } }

  /// Replaces the served models at run time, as when an instance is redeployed with other ones.
  func replaceModels(_ models: [String]) {
    state.withLockedValue {
      $0.models = models
      $0.addSeries(for: models)
    }
  }

  /// Whether /health says the engine is well.
  var isHealthy: Bool {
    get { state.withLockedValue { $0.healthy } }
    set { state.withLockedValue { $0.healthy = newValue } }
  }

  // MARK: Scheduling

  /// Asks for `job` to run. Returns its id, and its admission when it runs at once; otherwise it
  /// waits, and `start` is called with its admission (on whichever thread frees a slot) when it
  /// runs. Either way `finish` must be called with the id once.
  func submit(_ job: Job, start: @escaping @Sendable (Admission) -> Void) -> (id: Int, admission: Admission?) {
    state.withLockedValue { state in
      let id = state.nextID
      state.nextID += 1
      state.addSeries(for: [job.model])
      if state.waiting.isEmpty, maxNumSeqs == 0 || state.running.count < maxNumSeqs {
        return (id, admit(id: id, job, &state))
      }
      state.waiting.append(Waiter(id: id, job: job, start: start))
      return (id, nil)
    }
  }

  /// A generation ended (or its client left while it waited): its slot goes to the next waiters.
  /// `finishReason` is vLLM's: stop, length or abort.
  func finish(_ id: Int, generatedTokens: Int, finishReason: String) {
    let started = state.withLockedValue { state -> [(Waiter, Admission)] in
      if let running = state.running.removeValue(forKey: id) {
        state.heldTokens -= running.heldTokens
        state.series[running.model]?.generationTokens += generatedTokens
        state.series[running.model]?.successes[finishReason, default: 0] += 1
      } else if let index = state.waiting.firstIndex(where: { $0.id == id }) {
        let waiter = state.waiting.remove(at: index)
        state.series[waiter.job.model]?.successes[finishReason, default: 0] += 1
      }
      var started: [(Waiter, Admission)] = []
      while !state.waiting.isEmpty, maxNumSeqs == 0 || state.running.count < maxNumSeqs {
        let waiter = state.waiting.removeFirst()
        started.append((waiter, admit(id: waiter.id, waiter.job, &state)))
      }
      return started
    }
    for (waiter, admission) in started { waiter.start(admission) }
  }

  /// Starts `job`: its prompt is looked up in the prefix cache and prefilled.
  private func admit(id: Int, _ job: Job, _ state: inout State) -> Admission {
    var cached = 0
    if cachesPrefixes {
      let blocks = state.cache.lookUpAndInsert(job.blockHashes)
      // As vLLM, the last prompt token is always computed, so a hit stops one token short.
      cached = min(blocks, max(0, job.promptTokens - 1) / PromptBlocks.blockSize) * PromptBlocks.blockSize
      state.series[job.model]?.prefixCacheQueries += job.promptTokens
      state.series[job.model]?.prefixCacheHits += cached
    }
    state.series[job.model]?.promptTokens += job.promptTokens
    state.running[id] = Running(model: job.model, heldTokens: job.heldTokens)
    state.heldTokens += job.heldTokens
    return Admission(id: id, cachedTokens: cached, computedTokens: job.promptTokens - cached)
  }

  // MARK: Metrics

  var snapshot: Snapshot {
    state.withLockedValue { state in
      var series = state.series
      for running in state.running.values { series[running.model]?.running += 1 }
      for waiter in state.waiting { series[waiter.job.model]?.waiting += 1 }
      return Snapshot(
        series: state.seriesOrder.compactMap { series[$0] },
        kvCacheUsage: min(1, Double(state.heldTokens) / Double(kvCacheTokens)),
        cachesPrefixes: cachesPrefixes, kvCacheBlocks: kvCacheTokens / PromptBlocks.blockSize)
    }
  }
}
