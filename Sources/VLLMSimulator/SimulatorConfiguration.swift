import NIOCore

/// How the simulator behaves: the models it serves, its pace, and the engine limits that fleet
/// routing measures (batch size, prefix cache, prefill cost).
public struct SimulatorConfiguration: Sendable {
  /// The KV cache size the usage gauge is measured against when the prefix cache is off.
  public static let defaultKVCacheTokens = 100_000

  /// The served model names; the first is the default for requests that name none.
  public var models = ["sim-model"]
  /// Delay before the first token.
  public var timeToFirstToken: TimeAmount = .zero
  /// Tokens per second after the first; 0 sends every token at once.
  public var tokensPerSecond: Double = 0
  /// Context length reported by /v1/models.
  public var maxModelLength = 4096
  /// Tokens generated when a request sets no limit.
  public var defaultMaxTokens = 16
  /// Serve /v1/responses (off: answer 404 like an upstream without it).
  public var servesResponses = true
  /// Serve /v1/rerank (off: only /rerank, like older servers).
  public var servesV1Rerank = true
  /// Length of the embedding vectors.
  public var embeddingDimensions = 384
  /// Generations running at once; later ones wait for a slot (vLLM's --max-num-seqs). 0: no limit,
  /// so benchmarks that hold thousands of streams open see no queueing unless they ask for it.
  public var maxNumSeqs = 0
  /// Tokens of prompt blocks kept for reuse, least recently used evicted first; 0 turns the prefix
  /// cache off.
  public var prefixCacheTokens = defaultKVCacheTokens
  /// Prefill cost added to the time to first token for every prompt token not found in the prefix
  /// cache; 0 keeps the time to first token exactly as configured.
  public var prefillMillisecondsPerToken: Double = 0

  public init() {}

  /// The default model: the first served one.
  public var model: String {
    get { models.first ?? "sim-model" }
    set { models = [newValue] }
  }

  var interTokenDelay: TimeAmount {
    tokensPerSecond > 0 ? .nanoseconds(Int64(1_000_000_000 / tokensPerSecond)) : .zero
  }
}
