import Dispatch
import NIOConcurrencyHelpers

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Waits for SIGTERM or SIGINT, the signals that start a graceful shutdown.
public enum TerminationSignal {
  /// Returns the signal number once one of them arrives.
  public static func wait() async -> Int32 {
    let waiter = Waiter()
    var sources: [any DispatchSourceSignal] = []
    for signalNumber in [SIGTERM, SIGINT] {
      signal(signalNumber, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
      source.setEventHandler { waiter.deliver(signalNumber) }
      source.resume()
      sources.append(source)
    }
    let received = await withCheckedContinuation { waiter.install($0) }
    for source in sources { source.cancel() }
    return received
  }
}

/// Hands the first signal to the waiting task, whichever comes first: the signal or the wait.
private final class Waiter: Sendable {
  private struct State {
    var continuation: CheckedContinuation<Int32, Never>? = nil
    var received: Int32? = nil
    var done = false
  }

  private let state = NIOLockedValueBox(State())

  func install(_ continuation: CheckedContinuation<Int32, Never>) {
    let ready = state.withLockedValue { state -> Int32? in
      if let received = state.received, !state.done {
        state.done = true
        return received
      }
      state.continuation = continuation
      return nil
    }
    if let ready { continuation.resume(returning: ready) }
  }

  func deliver(_ signalNumber: Int32) {
    let continuation = state.withLockedValue { state -> CheckedContinuation<Int32, Never>? in
      guard !state.done else { return nil }
      guard let continuation = state.continuation else {
        state.received = signalNumber
        return nil
      }
      state.done = true
      return continuation
    }
    continuation?.resume(returning: signalNumber)
  }
}
