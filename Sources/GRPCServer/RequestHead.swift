import NIOCore

/// The request HEADERS of one call, gathered header by header as nghttp2 decodes them, then
/// checked against the gRPC-over-HTTP/2 rules before any handler runs.
struct RequestHead {
  /// What the checks decided.
  enum Verdict {
    case accept(Accepted)
    /// Refuse with this HTTP status (200 for gRPC-level errors) and gRPC status.
    case reject(httpStatus: Int, status: Status, headers: [(String, String)])
  }

  struct Accepted {
    var path: String
    var metadata: Metadata
    var requestEncoding: CompressionAlgorithm
    var responseEncoding: CompressionAlgorithm
    var timeout: Timeout?
  }

  private var method: String? = nil
  private var path: String? = nil
  private var contentType: String? = nil
  private var te: String? = nil
  private var timeoutHeader: String? = nil
  private var encoding: String? = nil
  private var acceptEncoding: String? = nil
  private var metadata = Metadata()
  private var headerListSize = 0
  private var firstProblem: Status? = nil

  /// Takes one decoded header. nghttp2 has already checked pseudo-header order, names and
  /// connection-specific headers.
  mutating func add(name: String, value: String, limit: Int) {
    headerListSize += name.utf8.count + value.utf8.count + 32
    guard headerListSize <= limit else {
      if firstProblem == nil {
        firstProblem = Status(.resourceExhausted, "request header list exceeds the server's limit of \(limit) bytes")
      }
      return
    }
    switch name {
    case ":method": method = value
    case ":path": path = value
    case ":scheme", ":authority": break
    case "content-type": contentType = value
    case "te": te = value
    case "grpc-timeout": timeoutHeader = value
    case "grpc-encoding": encoding = value
    case "grpc-accept-encoding": acceptEncoding = value
    default:
      if Metadata.isBinaryKey(name) {
        if let bytes = Base64.decode(value) {
          metadata.add(name, binary: bytes)
        } else if firstProblem == nil {
          firstProblem = Status(.internal, "metadata '\(name)' is not valid base64")
        }
      } else {
        metadata.add(name, value)
      }
    }
  }

  func verdict(router: Router) -> Verdict {
    guard method == "POST" else {
      return .reject(
        httpStatus: 405, status: Status(.internal, "gRPC requires POST; received \(method ?? "no method")"),
        headers: [("allow", "POST")])
    }
    guard let contentType, Self.isGRPCContentType(contentType) else {
      return .reject(
        httpStatus: 415,
        status: Status(.internal, "content-type must be application/grpc; received \(contentType ?? "none")"),
        headers: [])
    }
    if let firstProblem {
      return .reject(httpStatus: 200, status: firstProblem, headers: [])
    }
    guard te == "trailers" else {
      return .reject(
        httpStatus: 200, status: Status(.internal, "te must be 'trailers'; received \(te ?? "none")"), headers: [])
    }
    guard let path, router.route(for: path) != nil else {
      return .reject(httpStatus: 200, status: Self.unknownMethodStatus(path ?? "", router: router), headers: [])
    }
    var requestEncoding = CompressionAlgorithm.identity
    if let encoding {
      guard let algorithm = CompressionAlgorithm(headerValue: encoding) else {
        return .reject(
          httpStatus: 200,
          status: Status(
            .unimplemented,
            "grpc-encoding '\(encoding)' is not supported; supported: \(CompressionAlgorithm.acceptEncodingHeader)"),
          headers: [("grpc-accept-encoding", CompressionAlgorithm.acceptEncodingHeader)])
      }
      requestEncoding = algorithm
    }
    var timeout: Timeout? = nil
    if let timeoutHeader {
      guard let parsed = Timeout(header: timeoutHeader) else {
        return .reject(
          httpStatus: 200, status: Status(.internal, "malformed grpc-timeout '\(timeoutHeader)'"), headers: [])
      }
      timeout = parsed
    }
    // Answer in the encoding the client used, when it says it can read it.
    var responseEncoding = CompressionAlgorithm.identity
    if requestEncoding != .identity, let acceptEncoding,
      acceptEncoding.split(separator: ",").contains(where: { CompressionAlgorithm(headerValue: $0) == requestEncoding })
    {
      responseEncoding = requestEncoding
    }
    return .accept(
      Accepted(
        path: path, metadata: metadata, requestEncoding: requestEncoding, responseEncoding: responseEncoding,
        timeout: timeout))
  }

  /// The client's `grpc-accept-encoding`, for handlers that choose to compress on their own.
  var acceptedEncodings: String? { acceptEncoding }

  static func isGRPCContentType(_ value: String) -> Bool {
    let lowered = value.lowercased()
    guard lowered.hasPrefix("application/grpc") else { return false }
    let rest = lowered.dropFirst("application/grpc".count)
    return rest.isEmpty || rest.hasPrefix(";") || rest == "+proto" || rest.hasPrefix("+proto;")
  }

  private static func unknownMethodStatus(_ path: String, router: Router) -> Status {
    let parts = path.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count == 3, parts[0].isEmpty, !parts[1].isEmpty, !parts[2].isEmpty else {
      return Status(.unimplemented, "malformed method path '\(path)'; expected /package.Service/Method")
    }
    if router.knowsService(parts[1]) {
      return Status(.unimplemented, "unknown method \(parts[2]) for service \(parts[1])")
    }
    return Status(.unimplemented, "unknown service \(parts[1])")
  }
}
