import Synchronization

/// Retries may add at most `ratio` to the load (Finagle's and Envoy's retry budgets), plus a few
/// per second so a quiet gateway can still fail over. Counts decay by half every `window`, so the
/// budget follows recent traffic at the cost of one atomic add per call.
final class RetryBudget: Sendable {
  let ratio: Double
  let minimum: Int
  private let requests = Atomic<Int>(0)
  private let retries = Atomic<Int>(0)

  init(ratio: Double = 0.2, minimum: Int = 10) {
    self.ratio = ratio
    self.minimum = minimum
  }

  func recordRequest() {
    requests.wrappingAdd(1, ordering: .relaxed)
  }

  /// Takes one retry from the budget, if there is one left.
  func tryRetry() -> Bool {
    let allowed = minimum + Int(ratio * Double(requests.load(ordering: .relaxed)))
    while true {
      let used = retries.load(ordering: .relaxed)
      guard used < allowed else { return false }
      if retries.compareExchange(expected: used, desired: used + 1, ordering: .relaxed).exchanged { return true }
    }
  }

  /// Called every window: older traffic counts half.
  func decay() {
    requests.store(requests.load(ordering: .relaxed) / 2, ordering: .relaxed)
    retries.store(retries.load(ordering: .relaxed) / 2, ordering: .relaxed)
  }
}
