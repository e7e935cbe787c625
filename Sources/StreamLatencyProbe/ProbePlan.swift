/// What one probe run does: where it connects, what it sends, and how many streams at once.
struct ProbePlan: Sendable {
  enum Mode: String, Sendable {
    /// HTTP/2 cleartext with prior knowledge, many streams per connection.
    case h2
    /// HTTP/1.1, one connection per stream.
    case http1
  }

  var mode: Mode
  var host: String
  var port: Int
  var path: String
  /// Extra request headers, names as given (lowercased for HTTP/2).
  var headers: [(name: String, value: String)]
  var body: [UInt8]
  /// Success means trailers with grpc-status 0, not just :status 200 and a clean end.
  var grpc: Bool
  var connections: Int
  var streamsPerConnection: Int
  /// The first streams start spread evenly over this many seconds (0: all at once).
  var rampSeconds: Double = 0
  /// Nil: each stream slot runs one stream. Otherwise each slot starts a new stream as soon as
  /// its last one ends, until this many seconds after the ramp, and only streams started after
  /// the ramp are measured: a steady load of `slots` open streams.
  var durationSeconds: Double? = nil
  var timeoutSeconds: Int64

  /// Streams open at once: one per HTTP/1.1 connection, or `streamsPerConnection` per HTTP/2 one.
  var slots: Int { connections * streamsPerConnection }
  var authority: String { "\(host):\(port)" }
}
