import NIOCore

/// The steps of the engine on one event loop at one pace: each step writes the next piece of
/// every generation it paces, as one vLLM engine step makes one token for every running sequence.
///
/// One timer per generation would not do: NIO runs every timer that is due before it polls its
/// sockets again, so a few hundred paced generations on one loop kept it in timers and it read no
/// new request for seconds. The next step is due an inter-token delay after this one's work ends,
/// so under load steps come further apart, every generation slows together, and the loop polls
/// its sockets between steps, as vLLM keeps taking requests while its steps grow with the batch.
///
/// Lives on its loop: joined, left and stepped there only.
final class EngineStepClock {
  let interTokenDelay: TimeAmount
  private let loop: any EventLoop
  private var generations: [ObjectIdentifier: Generation] = [:]
  private var nextStep: Scheduled<Void>? = nil
  /// Set during a step, which schedules the next one itself when it is done.
  private var isStepping = false

  private struct Generation {
    /// When it last wrote a piece: its next one is due an inter-token delay later.
    var lastPiece: NIODeadline
    var writeNextPiece: () -> Void
  }

  init(loop: any EventLoop, interTokenDelay: TimeAmount) {
    self.loop = loop
    self.interTokenDelay = interTokenDelay
  }

  /// Paces `id` from now on: `writeNextPiece` runs on each step at least an inter-token delay
  /// after `lastPiece`, until `leave`. A generation that joins between steps skips a step that
  /// would come sooner, so no gap in its answer is shorter than the delay asked for.
  func join(_ id: ObjectIdentifier, lastPiece: NIODeadline, writeNextPiece: @escaping () -> Void) {
    generations[id] = Generation(lastPiece: lastPiece, writeNextPiece: writeNextPiece)
    if nextStep == nil, !isStepping { scheduleStep() }
  }

  /// Stops pacing `id`; its step closure is released.
  func leave(_ id: ObjectIdentifier) {
    generations[id] = nil
    if generations.isEmpty, !isStepping {
      nextStep?.cancel()
      nextStep = nil
    }
  }

  private func scheduleStep() {
    nextStep = loop.assumeIsolated().scheduleTask(in: interTokenDelay) { self.step() }
  }

  private func step() {
    nextStep = nil
    isStepping = true
    let start = NIODeadline.now()
    // Writing a piece may end a generation or close its connection, which leaves the clock; the
    // step goes over the generations it began with, skipping those that left.
    let paced = generations
    for id in paced.keys {
      guard let generation = generations[id], start - generation.lastPiece >= interTokenDelay else { continue }
      generations[id]?.lastPiece = start
      generation.writeNextPiece()
    }
    isStepping = false
    if !generations.isEmpty { scheduleStep() }
  }
}
