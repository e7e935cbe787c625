import NIOCore

/// The request HEADERS of one call, gathered header by header as nghttp2 decodes them, then
/// checked against the gRPC-over-HTTP/2 rules before any handler runs.
struct RequestHead {
  /// What the checks decided.
  enum Verdict {
    case accept(Accepted)
    /// Refuse with this HTTP status (200 for gRPC-level errors) and gRPC status.
    case reject(httpStatus: Int, status: Status, headers: [(String, String)])
    /// A gRPC-Web or Connect request refused once its protocol is known: answered in it.
    case rejectWeb(WebRequest, Status)
    /// A browser's CORS preflight (`OPTIONS`) for a web call.
    case preflight(origin: String?, requestedHeaders: String?)
  }

  /// What a gRPC-Web or Connect request says about itself beyond gRPC's headers.
  struct WebRequest {
    var wire: WireProtocol
    /// The page's origin, when a browser sent one.
    var origin: String?
  }

  struct Accepted {
    var path: String
    var route: Route
    var metadata: Metadata
    var requestEncoding: CompressionAlgorithm
    var responseEncoding: CompressionAlgorithm
    var timeout: Timeout?
    var acceptedEncodings: String?
    var web: WebRequest?
  }

  // The common values are recognised from their bytes; Strings are made only for what is kept.
  private var isPost = false
  private var method: String? = nil
  private var path: String? = nil
  private var route: Route? = nil
  private var hasGRPCContentType = false
  private var contentType: String? = nil
  private var hasTETrailers = false
  private var te: String? = nil
  private var timeoutHeader: String? = nil
  private var encoding: String? = nil
  private var acceptEncoding: String? = nil
  private var metadata = Metadata()
  private var headerListSize = 0
  private var firstProblem: Status? = nil
  /// HTTP/2's own rules for the request's fields (nghttp2 no longer checks them).
  private(set) var rules = HTTPRequestRules()

  /// Takes one decoded header. A field that breaks HTTP/2's rules makes the request malformed
  /// (`rules`), and the fields after it are not read: its stream is reset.
  mutating func add(
    name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, limit: Int, router: Router,
    repeatedValues: inout RepeatedHeaderValues
  ) {
    let field = RequestFieldName(name)
    guard rules.take(field, name: name, value: value) else { return }
    headerListSize += name.count + value.count + 32
    guard headerListSize <= limit else {
      if firstProblem == nil {
        firstProblem = Status(.resourceExhausted, "request header list exceeds the server's limit of \(limit) bytes")
      }
      return
    }
    switch field {
    case .method:
      isPost = value.matches("POST")
      if !isPost { method = String(decoding: value, as: UTF8.self) }
    case .path:
      // A known method's path String is the route's own; only unknown paths make a new one.
      route = router.route(forPath: value)
      path = route?.path ?? String(decoding: value, as: UTF8.self)
    case .scheme, .authority, .unknownPseudoHeader, .connectionSpecific:
      // :scheme and :authority mean nothing to gRPC here; the rules refused the others.
      return
    case .contentType:
      hasGRPCContentType = value.matches("application/grpc")
      if !hasGRPCContentType { contentType = String(decoding: value, as: UTF8.self) }
    case .te:
      hasTETrailers = value.matches("trailers")
      if !hasTETrailers { te = String(decoding: value, as: UTF8.self) }
    case .grpcTimeout:
      timeoutHeader = String(decoding: value, as: UTF8.self)
    case .grpcEncoding:
      encoding = String(decoding: value, as: UTF8.self)
    case .grpcAcceptEncoding:
      acceptEncoding = String(decoding: value, as: UTF8.self)
    case .host, .contentLength, .accept, .apiKey, .userAgent, .traceparent, .requestID, .authorization,
      .acceptEncoding, .other:
      let isBinary = field == .other && name.hasSuffix("-bin")
      addMetadata(
        field.metadataName ?? String(decoding: name, as: UTF8.self),
        isBinary ? String(decoding: value, as: UTF8.self) : repeatedValues.string(value), isBinary: isBinary)
    }
  }

  /// The same, from Strings (tests).
  mutating func add(name: String, value: String, limit: Int, router: Router) {
    var name = name
    var value = value
    var repeatedValues = RepeatedHeaderValues()
    name.withUTF8 { nameBytes in
      value.withUTF8 { valueBytes in
        add(
          name: UnsafeRawBufferPointer(nameBytes), value: UnsafeRawBufferPointer(valueBytes), limit: limit,
          router: router, repeatedValues: &repeatedValues)
      }
    }
  }

  /// `isBinary`: the name ends in `-bin`, as its bytes showed (String's hasSuffix cost about
  /// 100 instructions a header).
  private mutating func addMetadata(_ name: String, _ value: String, isBinary: Bool) {
    if isBinary {
      if let bytes = Base64.decode(value) {
        metadata.append(Metadata.Entry(key: name, value: .binary(bytes)))
      } else if firstProblem == nil {
        firstProblem = Status(.internal, "metadata '\(name)' is not valid base64")
      }
    } else {
      metadata.append(Metadata.Entry(key: name, value: .string(value)))
    }
  }

  /// Consuming: what the call keeps of the head (its path, route and metadata) moves into the
  /// verdict instead of being copied from a head destroyed right after.
  consuming func verdict(router: Router, web: WebSupport? = nil) -> Verdict {
    if !isPost, web != nil, method == "OPTIONS" {
      return .preflight(
        origin: metadata.first("origin"), requestedHeaders: metadata.first("access-control-request-headers"))
    }
    guard isPost else {
      return .reject(
        httpStatus: 405, status: Status(.internal, "gRPC requires POST; received \(method ?? "no method")"),
        headers: [("allow", "POST")])
    }
    if !hasGRPCContentType {
      let wire = contentType.flatMap(WireProtocol.init(contentType:))
      guard let wire, wire == .grpc || web != nil else {
        return .reject(
          httpStatus: 415,
          status: Status(.internal, "content-type must be application/grpc; received \(contentType ?? "none")"),
          headers: [])
      }
      if wire != .grpc { return webVerdict(wire, router: router, web: web!) }
    }
    if let firstProblem {
      return .reject(httpStatus: 200, status: firstProblem, headers: [])
    }
    guard hasTETrailers else {
      return .reject(
        httpStatus: 200, status: Status(.internal, "te must be 'trailers'; received \(te ?? "none")"), headers: [])
    }
    guard let path, let route else {
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
        path: path, route: route, metadata: metadata, requestEncoding: requestEncoding,
        responseEncoding: responseEncoding, timeout: timeout, acceptedEncodings: acceptEncoding, web: nil))
  }

  /// The checks for gRPC-Web and Connect: no `te: trailers` (browsers cannot send it), their own
  /// timeout and compression headers for Connect, and the protocol's own form for every refusal.
  private consuming func webVerdict(_ wire: WireProtocol, router: Router, web: WebSupport) -> Verdict {
    var metadata = self.metadata
    let request = WebRequest(wire: wire, origin: metadata.first("origin"))
    // Headers that only steer the web protocols are not the call's metadata.
    let connectTimeout = metadata.remove("connect-timeout-ms")
    let contentEncoding = metadata.remove(wire.isConnectUnary ? "content-encoding" : "connect-content-encoding")
    let connectAcceptEncoding = metadata.remove("connect-accept-encoding")
    for key in ["connect-protocol-version", "x-grpc-web", "content-length", "accept-encoding"] {
      _ = metadata.remove(key)
    }
    if let firstProblem { return .rejectWeb(request, firstProblem) }
    guard let path, let route else {
      return .rejectWeb(request, Self.unknownMethodStatus(path ?? "", router: router))
    }
    if wire.isJSON && web.codec == nil {
      return .rejectWeb(request, Status(.unimplemented, "this server has no JSON mapping of its messages"))
    }
    if wire.isConnectUnary && !route.isUnary {
      return .rejectWeb(
        request,
        Status(
          .unimplemented,
          "\(path) streams; call it with application/connect+proto or application/connect+json"))
    }
    var requestEncoding = CompressionAlgorithm.identity
    let encodingHeader = wire.isConnect ? contentEncoding : encoding
    if let encodingHeader {
      guard let algorithm = CompressionAlgorithm(headerValue: encodingHeader) else {
        return .rejectWeb(
          request,
          Status(
            .unimplemented,
            "encoding '\(encodingHeader)' is not supported; supported: \(CompressionAlgorithm.acceptEncodingHeader)"))
      }
      requestEncoding = algorithm
    }
    var timeout: Timeout? = nil
    if wire.isConnect, let connectTimeout {
      guard connectTimeout.utf8.count <= 10, let milliseconds = Int64(connectTimeout), milliseconds >= 0 else {
        return .rejectWeb(request, Status(.invalidArgument, "malformed connect-timeout-ms '\(connectTimeout)'"))
      }
      timeout = Timeout(.milliseconds(milliseconds))
    } else if !wire.isConnect, let timeoutHeader {
      guard let parsed = Timeout(header: timeoutHeader) else {
        return .rejectWeb(request, Status(.internal, "malformed grpc-timeout '\(timeoutHeader)'"))
      }
      timeout = parsed
    }
    // gRPC-Web answers compressed as gRPC does; Connect answers uncompressed, which every
    // client must accept.
    var responseEncoding = CompressionAlgorithm.identity
    if wire.isGRPCWeb, requestEncoding != .identity, let acceptEncoding,
      acceptEncoding.split(separator: ",").contains(where: { CompressionAlgorithm(headerValue: $0) == requestEncoding })
    {
      responseEncoding = requestEncoding
    }
    return .accept(
      Accepted(
        path: path, route: route, metadata: metadata, requestEncoding: requestEncoding,
        responseEncoding: responseEncoding, timeout: timeout,
        acceptedEncodings: wire.isConnect ? connectAcceptEncoding : acceptEncoding, web: request))
  }

  static func unknownMethodStatus(_ path: String, router: Router) -> Status {
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

extension UnsafeRawBufferPointer {
  /// Byte-for-byte equality with an ASCII literal, without making a String: a word at a time,
  /// the last overlapping the one before, or two overlapping halves of one for short literals.
  /// The literal's words fold into constants once inlined; a call to memcmp cost about 25
  /// instructions a name, and a field's name was compared with several literals (callgrind).
  @inline(__always)
  func matches(_ literal: StaticString) -> Bool {
    let count = literal.utf8CodeUnitCount
    guard self.count == count else { return false }
    let expected = UnsafeRawBufferPointer(start: literal.utf8Start, count: count)
    switch count {
    case 0: return true
    case 1: return self[0] == expected[0]
    case 2, 3:
      return sameBytes(expected, at: 0, as: UInt16.self) && sameBytes(expected, at: count &- 2, as: UInt16.self)
    case 4...7:
      return sameBytes(expected, at: 0, as: UInt32.self) && sameBytes(expected, at: count &- 4, as: UInt32.self)
    default:
      var offset = 0
      while offset &+ 8 < count {
        guard sameBytes(expected, at: offset, as: UInt64.self) else { return false }
        offset &+= 8
      }
      return sameBytes(expected, at: count &- 8, as: UInt64.self)
    }
  }

  @inline(__always)
  private func sameBytes<Word: FixedWidthInteger>(
    _ other: UnsafeRawBufferPointer, at offset: Int, as word: Word.Type
  ) -> Bool {
    loadUnaligned(fromByteOffset: offset, as: Word.self) == other.loadUnaligned(fromByteOffset: offset, as: Word.self)
  }

  /// Whether the bytes end with an ASCII literal.
  func hasSuffix(_ literal: StaticString) -> Bool {
    let length = literal.utf8CodeUnitCount
    guard count >= length else { return false }
    return UnsafeRawBufferPointer(rebasing: self[(count - length)...]).matches(literal)
  }
}
