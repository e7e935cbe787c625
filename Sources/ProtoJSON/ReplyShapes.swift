import Synchronization

/// The shape of the replies of one kind (an operation's), learnt from one of them and shared by
/// the threads that translate them: see `ReplyTemplate`. When a reply does not fit, the next
/// one that does not is learnt from instead, at most one in every so many (doubling up to 64 as
/// misfits go on): replies that take turns between two shapes, or a kind whose replies never
/// have one (embeddings' float arrays), cost a walk of their keys only now and then.
public final class ReplyShapes: Sendable {
  private struct State {
    var template: ReplyTemplate? = nil
    /// Misfits to translate the general way before learning from one.
    var misfitsToSkip = 0
    var nextSkip = 0
    /// False for a shape fixed at the start.
    var learns = true
  }

  private let state: Mutex<State>

  public init() {
    state = Mutex(State())
  }

  /// The shape of `reply` (when it has one the template can hold), never learnt anew: what a
  /// fuzz target checks the replies of that shape and its mutations against.
  public init(fixedFrom reply: [UInt8], as message: MessageSchema, in schema: Schema) {
    state = Mutex(State(template: ReplyTemplateLearner.learn(reply, as: message, in: schema), learns: false))
  }

  /// Whether it holds a shape.
  public var hasShape: Bool {
    template != nil
  }

  var template: ReplyTemplate? {
    state.withLock { $0.template }
  }

  /// After a reply the template did not fit (or with none yet): whether to learn from it.
  func shouldLearn() -> Bool {
    state.withLock { state in
      guard state.learns else { return false }
      if state.misfitsToSkip > 0 {
        state.misfitsToSkip -= 1
        return false
      }
      state.misfitsToSkip = state.nextSkip
      state.nextSkip = min(state.nextSkip * 2 + 1, 63)
      return true
    }
  }

  func learnt(_ template: ReplyTemplate) {
    state.withLock { $0.template = template }
  }
}
