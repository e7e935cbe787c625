/// Whether a streamed chat or text completion whose upstream fails part way goes on on another
/// replica serving the model (see StreamingUpstreamCall), and how often per call.
public struct StreamMigrationPolicy: Sendable {
  public var isEnabled: Bool
  /// Moves one call may make at most.
  public var maximumPerCall: Int
  /// The models it applies to; nil for all.
  public var models: Set<String>?

  public init(isEnabled: Bool = true, maximumPerCall: Int = 3, models: Set<String>? = nil) {
    self.isEnabled = isEnabled
    self.maximumPerCall = maximumPerCall
    self.models = models
  }

  public static let off = StreamMigrationPolicy(isEnabled: false)

  /// The moves a call for `model` may make; 0 when it may not move.
  func limit(for model: String) -> Int {
    guard isEnabled, maximumPerCall > 0 else { return 0 }
    if let models, !models.contains(model) { return 0 }
    return maximumPerCall
  }
}
