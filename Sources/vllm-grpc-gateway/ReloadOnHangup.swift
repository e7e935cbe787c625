import ServiceLifecycle
import UnixSignals

/// SIGHUP reloads the configuration file: a service of the group that stops with it.
struct ReloadOnHangup: Service {
  let reload: @Sendable () -> Void

  func run() async throws {
    for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
      reload()
    }
  }
}
