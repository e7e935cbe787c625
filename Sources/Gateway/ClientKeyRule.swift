/// What one client key may do: which models, how many requests and tokens a minute, how many
/// calls at once. The key itself is known only by its SHA-256.
public struct ClientKeyRule: Sendable, Equatable {
  /// Names the key in logs and metrics; never the key.
  public var id: String
  /// The SHA-256 of the key the client presents; nil for a client known by its certificate.
  public var sha256: [UInt8]?
  /// A client known by the common name of its TLS client certificate (mTLS) instead of a key.
  public var certificateCommonName: String?
  /// Models it may use; nil for all.
  public var models: [String]?
  public var requestsPerMinute: Double?
  /// Prompt plus completion tokens a minute, charged when each call ends.
  public var tokensPerMinute: Double?
  public var maxConcurrentStreams: Int?

  public init(
    id: String, sha256: [UInt8]?, certificateCommonName: String? = nil, models: [String]? = nil,
    requestsPerMinute: Double? = nil,
    tokensPerMinute: Double? = nil, maxConcurrentStreams: Int? = nil
  ) {
    self.id = id
    self.sha256 = sha256
    self.certificateCommonName = certificateCommonName
    self.models = models
    self.requestsPerMinute = requestsPerMinute
    self.tokensPerMinute = tokensPerMinute
    self.maxConcurrentStreams = maxConcurrentStreams
  }
}
