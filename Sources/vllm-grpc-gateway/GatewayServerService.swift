import ServiceLifecycle

/// The gRPC server as a service of the process's service group: it serves until the group shuts
/// down gracefully (SIGTERM or SIGINT), then drains as it always has: health NOT_SERVING, GOAWAY
/// to every client, calls in flight finish.
struct GatewayServerService: Service {
  /// Runs the server until the closure it is given returns.
  let serve: @Sendable (_ untilShutdown: @escaping @Sendable () async -> Void) async throws -> Void

  func run() async throws {
    try await serve {
      // Returns when the group starts its graceful shutdown (or the task is cancelled).
      try? await gracefulShutdown()
    }
  }
}
