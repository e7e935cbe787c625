import NIOCore

/// How the simulator behaves: the model it serves, and its pace.
public struct SimulatorConfiguration: Sendable {
  /// The served model name.
  public var model = "sim-model"
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

  public init() {}

  var interTokenDelay: TimeAmount {
    tokensPerSecond > 0 ? .nanoseconds(Int64(1_000_000_000 / tokensPerSecond)) : .zero
  }
}
