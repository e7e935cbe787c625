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

  /// Where calls are counted, if anywhere.
  public var statistics: CallStatistics? = nil

  public init() {}
}
