/// A request field's name, recognised once from its bytes for both readers of it: HTTP/2's
/// rules (`HTTPRequestRules`) and gRPC's (`RequestHead`). Each matched the names it cared about
/// on its own, and the rules scanned every name's bytes, the common ones too, for about 350
/// instructions of a unary call's fields (callgrind, h2load's seven regular fields).
///
/// A recognised regular name is its literal's lower-case bytes, so it is a valid name as it
/// stands; only `.other` names still need their bytes checked.
enum RequestFieldName: Equatable {
  // Request pseudo-headers, and any other name starting with a colon.
  case method, scheme, path, authority, unknownPseudoHeader
  // What gRPC reads itself.
  case contentType, te, grpcTimeout, grpcEncoding, grpcAcceptEncoding
  // What HTTP/2's rules treat apart.
  case host, contentLength, connectionSpecific
  // Metadata most calls carry, kept under their literal names (a String from the bytes would be
  // validated as UTF-8, about 100 instructions a name).
  case accept, apiKey, userAgent, traceparent, requestID, authorization, acceptEncoding
  case other

  /// Lengths first, then the bytes a word at a time (`matches`).
  init(_ name: UnsafeRawBufferPointer) {
    let known: RequestFieldName? =
      switch name.count {
      case 2: name.matches("te") ? .te : nil
      case 4: name.matches("host") ? .host : nil
      case 5: name.matches(":path") ? .path : nil
      case 6: name.matches("accept") ? .accept : nil
      case 7:
        name.matches(":method")
          ? .method : name.matches(":scheme") ? .scheme : name.matches("upgrade") ? .connectionSpecific : nil
      case 9: name.matches("x-api-key") ? .apiKey : nil
      case 10:
        name.matches("user-agent")
          ? .userAgent
          : name.matches(":authority")
            ? .authority : name.matches("connection") || name.matches("keep-alive") ? .connectionSpecific : nil
      case 11: name.matches("traceparent") ? .traceparent : nil
      case 12:
        name.matches("content-type")
          ? .contentType : name.matches("grpc-timeout") ? .grpcTimeout : name.matches("x-request-id") ? .requestID : nil
      case 13: name.matches("grpc-encoding") ? .grpcEncoding : name.matches("authorization") ? .authorization : nil
      case 14: name.matches("content-length") ? .contentLength : nil
      case 15: name.matches("accept-encoding") ? .acceptEncoding : nil
      case 16: name.matches("proxy-connection") ? .connectionSpecific : nil
      case 17: name.matches("transfer-encoding") ? .connectionSpecific : nil
      case 20: name.matches("grpc-accept-encoding") ? .grpcAcceptEncoding : nil
      default: nil
      }
    self = known ?? (name.first == UInt8(ascii: ":") ? .unknownPseudoHeader : .other)
  }

  var isPseudoHeader: Bool {
    switch self {
    case .method, .scheme, .path, .authority, .unknownPseudoHeader: true
    default: false
    }
  }

  /// The name of a recognised field that becomes metadata, as a literal String.
  var metadataName: String? {
    switch self {
    case .accept: "accept"
    case .apiKey: "x-api-key"
    case .userAgent: "user-agent"
    case .traceparent: "traceparent"
    case .requestID: "x-request-id"
    case .authorization: "authorization"
    case .contentLength: "content-length"
    case .acceptEncoding: "accept-encoding"
    case .host: "host"
    default: nil
    }
  }
}
