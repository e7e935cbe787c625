import ArgumentParser
import GRPCInteropService
import GRPCStandardServices
import Logging
import ServerCLI

@main
struct InteropServerCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "grpc-interop-server",
    abstract: "Serves grpc.testing.TestService, so standard gRPC interop clients can check this server.")

  @Option(help: "Port to listen on.")
  var port: Int = 10000

  @Option(help: "Address to bind.")
  var host: String = "0.0.0.0"

  @OptionGroup var server: ServerOptions

  func run() async throws {
    server.bootstrapLogging()
    try await StandardServer.run(
      services: [TestService()], host: host, port: port, threads: server.threads,
      configuration: server.configuration, logger: Logger(label: "grpc-interop-server"))
  }
}
