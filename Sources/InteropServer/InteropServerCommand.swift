import ArgumentParser
import GRPCInteropService
import GRPCServer
import GRPCStandardServices
import Logging
import NIOCore

@main
struct InteropServerCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "grpc-interop-server",
    abstract: "Serves grpc.testing.TestService, so standard gRPC interop clients can check this server.")

  @Option(help: "Port to listen on.")
  var port: Int = 10000

  @Option(help: "Address to bind.")
  var host: String = "0.0.0.0"

  @Option(help: "Event-loop threads (default: one per core).")
  var threads: Int = System.coreCount

  @Option(help: "Log level: trace, debug, info, notice, warning, error or critical.")
  var logLevel: String = "notice"

  func run() async throws {
    guard let level = Logger.Level(rawValue: logLevel) else {
      throw ValidationError("unknown log level '\(logLevel)'")
    }
    LoggingSystem.bootstrap { label in
      var handler = StreamLogHandler.standardError(label: label)
      handler.logLevel = level
      return handler
    }
    try await StandardServer.run(
      services: [TestService()], host: host, port: port, threads: threads,
      configuration: ServerConfiguration(), logger: Logger(label: "grpc-interop-server"))
  }
}
