import Synchronization

/// The shape of the requests of one kind (an operation's), learnt from one of them and shared by
/// the threads that translate them: see `RequestTemplate`. When a request does not fit, a later
/// one that does not is learnt from instead (`LearningBackoff`).
public final class RequestShapes: Sendable {
  private struct State {
    var template: RequestTemplate? = nil
    var backoff = LearningBackoff()
  }

  private let state: Mutex<State>

  public init() {
    state = Mutex(State())
  }

  /// The shape of `request` (when it has one the template can hold), never learnt anew: what a
  /// test or fuzz target checks requests of that shape and its mutations against.
  public init(fixedFrom request: [UInt8], as message: MessageSchema, in schema: Schema, skipping: [String] = []) {
    var state = State(template: RequestTemplateLearner.learn(request, as: message, in: schema, skipping: skipping))
    state.backoff.learns = false
    self.state = Mutex(state)
  }

  /// Whether it holds a shape.
  public var hasShape: Bool {
    template != nil
  }

  var template: RequestTemplate? {
    state.withLock { $0.template }
  }

  /// After a request the template did not fit (or with none yet): whether to learn from it.
  func shouldLearn() -> Bool {
    state.withLock { $0.backoff.shouldLearn() }
  }

  func learnt(_ template: RequestTemplate) {
    state.withLock { $0.template = template }
  }
}
