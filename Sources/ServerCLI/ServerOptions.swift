import ArgumentParser
import GRPCServer
import Logging
import NIOCore

/// The server flags every executable here shares: threads, HTTP/2 and message limits, shutdown,
/// logging.
public struct ServerOptions: ParsableArguments {
  @Option(help: "Event-loop threads (default: one per core).")
  public var threads: Int = System.coreCount

  @Option(help: "SETTINGS_MAX_CONCURRENT_STREAMS per connection.")
  public var maxConcurrentStreams: Int = 1000

  @Option(help: "Largest request message accepted, in bytes, after decompression.")
  public var maxReceiveMessageSize: Int = 4 * 1024 * 1024

  @Option(help: "Largest request header list accepted, in bytes (names + values + 32 per field).")
  public var maxHeaderListSize: Int = 16 * 1024

  @Option(help: "Seconds in-flight calls may take to finish after SIGTERM or SIGINT.")
  public var shutdownGracePeriod: Double = 10

  @Option(help: "Log level: trace, debug, info, notice, warning, error or critical.")
  public var logLevel: String = "info"

  public init() {}

  public func validate() throws {
    guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown log level '\(logLevel)'") }
    guard threads > 0 else { throw ValidationError("--threads must be at least 1") }
    guard maxConcurrentStreams > 0 else { throw ValidationError("--max-concurrent-streams must be at least 1") }
    guard maxReceiveMessageSize > 0 else { throw ValidationError("--max-receive-message-size must be positive") }
    guard maxHeaderListSize >= 1024 else { throw ValidationError("--max-header-list-size must be at least 1024") }
    guard shutdownGracePeriod >= 0 else { throw ValidationError("--shutdown-grace-period cannot be negative") }
  }

  public var configuration: ServerConfiguration {
    var configuration = ServerConfiguration()
    configuration.maximumConcurrentStreams = maxConcurrentStreams
    configuration.maximumReceiveMessageSize = maxReceiveMessageSize
    configuration.maximumHeaderListSize = maxHeaderListSize
    configuration.shutdownGracePeriod = .nanoseconds(Int64(shutdownGracePeriod * 1_000_000_000))
    return configuration
  }

  /// Sends logs to standard error, one line per event, at the chosen level.
  public func bootstrapLogging() {
    let level = Logger.Level(rawValue: logLevel) ?? .info
    LoggingSystem.bootstrap { label in
      var handler = StreamLogHandler.standardError(label: label)
      handler.logLevel = level
      return handler
    }
  }
}
