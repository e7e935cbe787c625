import NIOConcurrencyHelpers
import NIOCore

/// The step clocks of one simulator: one for each event loop and inter-token delay in use (a
/// request may set its own pace). Connections on a loop share its clocks; a clock stays once
/// made, without a timer while it paces nothing.
final class EngineStepClocks: Sendable {
  private struct Key: Hashable {
    var loop: ObjectIdentifier
    var interTokenDelay: Int64
  }

  private let clocks = NIOLockedValueBox<[Key: NIOLoopBound<EngineStepClock>]>([:])

  init() {}

  /// The clock that paces generations at `interTokenDelay` on `loop`; called on `loop`.
  func clock(on loop: any EventLoop, interTokenDelay: TimeAmount) -> EngineStepClock {
    clocks.withLockedValue { clocks in
      let key = Key(loop: ObjectIdentifier(loop), interTokenDelay: interTokenDelay.nanoseconds)
      if let clock = clocks[key] { return clock.value }
      let clock = EngineStepClock(loop: loop, interTokenDelay: interTokenDelay)
      clocks[key] = NIOLoopBound(clock, eventLoop: loop)
      return clock
    }
  }
}
