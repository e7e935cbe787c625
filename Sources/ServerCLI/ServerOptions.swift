import ArgumentParser
import GRPCServer
import Logging
import NIOCore

#if canImport(Glibc)
  import Glibc
#endif

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

  @Option(help: "Client connections open at once; more are closed as soon as they are accepted.")
  public var maxConnections: Int = 10_000

  @Option(help: "Seconds a new connection has to complete the HTTP/2 handshake (0: no limit).")
  public var handshakeTimeout: Double = 10

  @Option(help: "Seconds a request header block may take to arrive once begun (0: no limit).")
  public var requestHeadersTimeout: Double = 10

  @Option(help: "Seconds a connection with no call open is kept (0: for ever).")
  public var connectionIdleTimeout: Double = 300

  @Option(
    help: "Seconds a call's queued answer may wait for a client that does not read before it is reset (0: no limit).")
  public var streamIdleTimeout: Double = 300

  @Option(help: "Seconds after which a connection gets GOAWAY, jittered by 10% (gRFC A9; 0: never).")
  public var maxConnectionAge: Double = 0

  @Option(help: "Seconds calls may run on a connection after its maximum age sent it GOAWAY.")
  public var maxConnectionAgeGrace: Double = 30

  @Option(help: "Seconds a client must leave between keepalive PINGs (grpc-go's MinTime).")
  public var keepaliveMinPingInterval: Double = 300

  @Flag(help: "Allow keepalive PINGs on connections with no call open (grpc-go's PermitWithoutStream).")
  public var keepalivePermitWithoutCalls = false

  @Option(help: "Glitches (invalid frames, provoked stream resets) a connection may cause in a burst.")
  public var glitchBurst: Int = 1000

  @Option(help: "Glitches per second a connection may cause beyond the burst before GOAWAY.")
  public var glitchesPerSecond: Int = 33

  @Option(help: "Bytes buffered for one connection's slow reader before its calls pause.")
  public var connectionSendBuffer: Int = 4 * 1024 * 1024

  @Option(help: "Bytes buffered for slow readers over all connections before their calls pause.")
  public var serverSendBuffer: Int = 256 * 1024 * 1024

  @Option(help: "Serve TLS (ALPN h2) with this PEM certificate chain; with --tls-key. Cleartext h2c without it.")
  public var tlsCertificate: String? = nil

  @Option(help: "The PEM private key of --tls-certificate.")
  public var tlsKey: String? = nil

  @Option(help: "Require client certificates signed by this PEM CA (mTLS).")
  public var tlsClientCa: String? = nil

  public init() {}

  /// The most seconds a duration flag may say (about 31 years): durations are kept in 64-bit
  /// nanoseconds, and a larger one (or an infinite one) overflowed them, which traps.
  public static let mostSeconds = 1e9

  public func validate() throws {
    guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown log level '\(logLevel)'") }
    guard threads > 0 else { throw ValidationError("--threads must be at least 1") }
    // Both are sent in SETTINGS as 32-bit numbers.
    guard maxConcurrentStreams > 0, maxConcurrentStreams <= UInt32.max else {
      throw ValidationError("--max-concurrent-streams must be from 1 to \(UInt32.max)")
    }
    guard maxReceiveMessageSize > 0 else { throw ValidationError("--max-receive-message-size must be positive") }
    guard maxHeaderListSize >= 1024, maxHeaderListSize <= UInt32.max else {
      throw ValidationError("--max-header-list-size must be from 1024 to \(UInt32.max)")
    }
    guard maxConnections > 0 else { throw ValidationError("--max-connections must be at least 1") }
    for (name, value) in [
      ("--handshake-timeout", handshakeTimeout), ("--request-headers-timeout", requestHeadersTimeout),
      ("--connection-idle-timeout", connectionIdleTimeout), ("--stream-idle-timeout", streamIdleTimeout),
      ("--max-connection-age", maxConnectionAge), ("--max-connection-age-grace", maxConnectionAgeGrace),
      ("--keepalive-min-ping-interval", keepaliveMinPingInterval), ("--shutdown-grace-period", shutdownGracePeriod),
    ] where !(value >= 0 && value < Self.mostSeconds) {
      throw ValidationError("\(name) must be a number of seconds, 0 or more; got \(value)")
    }
    guard glitchBurst > 0, glitchesPerSecond > 0 else {
      throw ValidationError("--glitch-burst and --glitches-per-second must be at least 1")
    }
    guard connectionSendBuffer >= 65536, serverSendBuffer >= connectionSendBuffer else {
      throw ValidationError("--connection-send-buffer must be at least 65536 and --server-send-buffer at least that")
    }
  }

  public var configuration: ServerConfiguration {
    var configuration = ServerConfiguration()
    configuration.maximumConcurrentStreams = maxConcurrentStreams
    configuration.maximumReceiveMessageSize = maxReceiveMessageSize
    configuration.maximumHeaderListSize = maxHeaderListSize
    configuration.shutdownGracePeriod = Self.duration(shutdownGracePeriod) ?? .zero
    configuration.maximumConnections = maxConnections
    configuration.handshakeTimeout = Self.duration(handshakeTimeout)
    configuration.requestHeadersTimeout = Self.duration(requestHeadersTimeout)
    configuration.connectionIdleTimeout = Self.duration(connectionIdleTimeout)
    configuration.streamIdleTimeout = Self.duration(streamIdleTimeout)
    configuration.maximumConnectionAge = Self.duration(maxConnectionAge)
    configuration.maximumConnectionAgeGrace = Self.duration(maxConnectionAgeGrace) ?? .zero
    configuration.minimumPingInterval = Self.duration(keepaliveMinPingInterval) ?? .zero
    configuration.permitsPingsWithoutCalls = keepalivePermitWithoutCalls
    configuration.glitchBurst = glitchBurst
    configuration.glitchesPerSecond = glitchesPerSecond
    configuration.connectionSendBufferHighWatermark = connectionSendBuffer
    configuration.serverSendBufferLimit = serverSendBuffer
    return configuration
  }

  /// Seconds as a duration; 0 means "off".
  private static func duration(_ seconds: Double) -> TimeAmount? {
    seconds > 0 ? .nanoseconds(Int64(seconds * 1_000_000_000)) : nil
  }

  /// Sends logs to standard error, one line per event, at the chosen level.
  /// SIGPIPE is ignored first: with standard error a pipe whose reader is gone, the first log
  /// line ended the process (NIO ignores SIGPIPE too, but only once its first socket exists).
  /// Log lines are then lost quietly, and the server goes on. (Closed standard descriptors were
  /// opened on /dev/null at the process's start: StandardDescriptors.)
  public func bootstrapLogging() {
    signal(SIGPIPE, SIG_IGN)
    let level = Logger.Level(rawValue: logLevel) ?? .info
    LoggingSystem.bootstrap { label in
      var handler = StreamLogHandler.standardError(label: label)
      handler.logLevel = level
      return handler
    }
  }
}
