import NIOCore

/// Limits and timings for a server. The defaults suit a service-mesh endpoint.
public struct ServerConfiguration: Sendable {
  /// SETTINGS_MAX_CONCURRENT_STREAMS advertised to each client.
  public var maximumConcurrentStreams: Int = 1000
  /// Largest request message accepted, after decompression; larger ones end the call with
  /// RESOURCE_EXHAUSTED.
  public var maximumReceiveMessageSize: Int = 4 * 1024 * 1024
  /// Largest request header list (names + values + 32 bytes each, as RFC 9113 counts it).
  public var maximumHeaderListSize: Int = 16 * 1024
  /// Initial HTTP/2 flow-control window per stream.
  public var initialStreamWindowSize: Int = 1024 * 1024
  /// Connection-level receive window.
  public var connectionWindowSize: Int = 8 * 1024 * 1024
  /// Rapid-reset protection: a burst of this many client RST_STREAMs ...
  public var streamResetBurst: UInt64 = 1000
  /// ... refilled at this many per second; beyond it the connection is closed with GOAWAY.
  public var streamResetRatePerSecond: UInt64 = 33
  /// Most CONTINUATION frames accepted for one header block.
  public var maximumContinuations: Int = 8
  /// Most entries in one SETTINGS frame.
  public var maximumSettingsEntries: Int = 32
  /// Most queued control-frame replies (PING and SETTINGS ACKs) before a flooding peer is dropped.
  public var maximumOutboundAcks: Int = 1000
  /// How long in-flight calls may run after shutdown begins.
  public var shutdownGracePeriod: TimeAmount = .seconds(10)
  /// Per-call bytes buffered for a slow reader beyond which `ServerCall.isWritable` turns false.
  public var callSendBufferHighWatermark: Int = 256 * 1024
  /// The same over all calls of one connection: a client that reads none of its streams holds
  /// at most about this much, however many streams it opens.
  public var connectionSendBufferHighWatermark: Int = 4 * 1024 * 1024
  /// The same over the whole server, shared by every connection.
  public var serverSendBufferLimit: Int = 256 * 1024 * 1024

  /// Calls that `ServerCall.admit()` lets in, at most, on one connection ...
  public var maximumAdmittedCallsPerConnection: Int = 1000
  /// ... and over the whole server.
  public var maximumAdmittedCalls: Int = 20_000

  // Defences against hostile or broken clients. Each has a safe default; `nil` turns a timeout off.

  /// Connections open at once; more are closed as soon as they are accepted.
  public var maximumConnections: Int = 10_000
  /// Time a new connection has to send the HTTP/2 preface and SETTINGS and to acknowledge ours.
  public var handshakeTimeout: TimeAmount? = .seconds(10)
  /// Time a request header block (or any frame header) may take to arrive once it has begun:
  /// slowloris clients trickling headers are closed.
  public var requestHeadersTimeout: TimeAmount? = .seconds(10)
  /// A connection with no call open for this long is closed with GOAWAY.
  public var connectionIdleTimeout: TimeAmount? = .seconds(300)
  /// A call whose queued response bytes have not moved for this long (the client stopped
  /// reading) is reset, and its handler cancelled, so a stuck reader cannot hold its upstream
  /// work for ever.
  public var streamIdleTimeout: TimeAmount? = .seconds(300)
  /// gRFC A9: connections older than this (jittered by ±10%) get GOAWAY, so long-lived
  /// connections rebalance across replicas; calls then have `maximumConnectionAgeGrace` to end.
  public var maximumConnectionAge: TimeAmount? = nil
  public var maximumConnectionAgeGrace: TimeAmount = .seconds(30)
  /// Keepalive enforcement as grpc-go's: a client PING sooner than this after the previous one
  /// is a strike (unless the server sent data or headers since); the third strike gets GOAWAY
  /// ENHANCE_YOUR_CALM "too_many_pings".
  public var minimumPingInterval: TimeAmount = .minutes(5)
  /// Whether keepalive PINGs are welcome on a connection with no call open (grpc-go's
  /// PermitWithoutStream); when not, such a PING within two hours of the last is a strike.
  public var permitsPingsWithoutCalls: Bool = false
  /// MadeYouReset (CVE-2025-8671) and similar: "glitches" (invalid frames, streams the server had
  /// to reset, streams the client reset before finishing its request, empty DATA frames) are
  /// allowed in a burst of this many ...
  public var glitchBurst: Int = 1000
  /// ... refilled at this many per second; beyond it, GOAWAY ENHANCE_YOUR_CALM and every call of
  /// the connection is cancelled. nghttp2 1.67's own limit has the same defaults.
  public var glitchesPerSecond: Int = 33
  /// PRIORITY frames allowed per stream the client opened (plus one stream's worth), as Envoy's.
  public var maximumPriorityFramesPerStream: Int = 100
  /// WINDOW_UPDATE frames allowed per DATA frame the server sent (plus a small allowance per
  /// stream and per connection), as Envoy's.
  public var maximumWindowUpdatesPerDataFrame: Int = 10

  /// Where calls are counted, if anywhere.
  public var statistics: CallStatistics? = nil
  /// TLS (with ALPN h2) on every connection; nil serves cleartext h2c.
  public var tls: ServerTLS? = nil
  /// gRPC-Web and Connect on the same port (HTTP/2 and HTTP/1.1); nil serves gRPC alone.
  public var web: WebConfiguration? = WebConfiguration()

  public init() {}
}
