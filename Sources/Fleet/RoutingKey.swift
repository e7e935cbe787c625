/// What routing needs to know of one call: the model it names, what kind of work it is, and its
/// prompt's prefix. The fleet reads nothing else of a request.
public struct RoutingKey: Sendable {
  public enum Workload: Sendable {
    /// Chat, completions, Responses: prefill and decode, where a cached prefix saves work.
    case generation
    /// Embeddings, rerank, score: one forward pass each, so only load matters.
    case pooling
    /// Anything else (models, audio): no preference beyond serving the model.
    case other
  }

  /// The model the request names; empty for the upstream's default.
  public var model: String
  public var workload: Workload
  public var prefix: PromptPrefix

  public init(model: String, workload: Workload, prefix: PromptPrefix = .none) {
    self.model = model
    self.workload = workload
    self.prefix = prefix
  }
}
