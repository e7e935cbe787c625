import Synchronization

/// The shape of the replies of one kind (an operation's), learnt from one of them and shared by
/// the threads that translate them: see `ReplyTemplate`. When a reply does not fit, a later one
/// that does not is learnt from instead (`LearningBackoff`): a kind whose replies never have a
/// shape (embeddings' float arrays) costs a walk of their keys only now and then.
public final class ReplyShapes: Sendable {
  private struct State {
    var template: ReplyTemplate? = nil
    var backoff = LearningBackoff()
  }

  private let state: Mutex<State>

  public init() {
    state = Mutex(State())
  }

  /// The shape of `reply` (when it has one the template can hold), never learnt anew: what a
  /// fuzz target checks the replies of that shape and its mutations against.
  public init(fixedFrom reply: [UInt8], as message: MessageSchema, in schema: Schema) {
    var state = State(template: ReplyTemplateLearner.learn(reply, as: message, in: schema))
    state.backoff.learns = false
    self.state = Mutex(state)
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
    state.withLock { $0.backoff.shouldLearn() }
  }

  func learnt(_ template: ReplyTemplate) {
    state.withLock { $0.template = template }
  }
}
