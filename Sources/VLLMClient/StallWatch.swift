import NIOCore

/// The exchanges of one event loop that must not wait on a silent vLLM for longer than the stall
/// timeout, checked together by one timer for the loop rather than one timer each. NIO makes a
/// promise for every scheduled task and cancels one by searching its whole queue: a timer per
/// exchange cost about 5,000 instructions a unary call (callgrind), and its cancellation grew
/// with the number of open streams.
final class StallWatch {
  let timeout: TimeAmount
  private let eventLoop: any EventLoop
  /// How often the exchanges are checked: an eighth of the timeout, from 10 ms to 1 s, so a
  /// stall ends at most that much after the timeout.
  private let period: TimeAmount
  private var exchanges: [UpstreamExchange] = []
  private var timer: Scheduled<Void>? = nil

  init(eventLoop: any EventLoop, timeout: TimeAmount) {
    self.eventLoop = eventLoop
    self.timeout = timeout
    period = .nanoseconds(min(max(timeout.nanoseconds / 8, 10_000_000), 1_000_000_000))
  }

  func add(_ exchange: UpstreamExchange) {
    exchange.stallWatchSlot = exchanges.count
    exchanges.append(exchange)
    if timer == nil { scheduleCheck() }
  }

  /// Takes `exchange` out in constant time: the last one moves into its slot.
  func remove(_ exchange: UpstreamExchange) {
    guard let slot = exchange.stallWatchSlot else { return }
    exchange.stallWatchSlot = nil
    let last = exchanges.removeLast()
    if slot < exchanges.count {
      exchanges[slot] = last
      last.stallWatchSlot = slot
    }
  }

  private func scheduleCheck() {
    // Left to lapse once nothing is watched, rather than cancelled: a cancel searches the queue.
    timer = eventLoop.assumeIsolated().scheduleTask(in: period) { self.check() }
  }

  private func check() {
    timer = nil
    let now = NIODeadline.now().uptimeNanoseconds
    let limit = UInt64(timeout.nanoseconds)
    var index = 0
    while index < exchanges.count {
      let exchange = exchanges[index]
      if exchange.hasStalled(at: now, limit: limit) {
        // Failing it removes it, and the last exchange takes its slot: the slot is checked again.
        exchange.fail(VLLMError.stalled(after: timeout))
        if index < exchanges.count && exchanges[index] === exchange { index += 1 }
      } else {
        index += 1
      }
    }
    if !exchanges.isEmpty { scheduleCheck() }
  }
}
