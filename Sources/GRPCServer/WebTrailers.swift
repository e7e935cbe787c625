/// The status and trailing metadata of a gRPC-Web call, which travel in the body because
/// browsers cannot read HTTP trailers.
enum WebTrailers {
  /// The headers a browser page may read from a web call's response (CORS); metadata keys are
  /// added per call.
  static let exposedHeaders =
    "grpc-status, grpc-message, grpc-status-details-bin, grpc-encoding, grpc-accept-encoding, content-encoding"

  /// The trailers frame's payload: an HTTP/1-style header block.
  static func grpcWebBlock(_ status: Status, trailers: Metadata) -> String {
    var block = "grpc-status:\(status.code.rawValue)\r\n"
    if !status.message.isEmpty { block += "grpc-message:\(PercentEncoding.encodeForHeader(status.message))\r\n" }
    for entry in trailers {
      switch entry.value {
      case .string(let text): block += "\(entry.key):\(text)\r\n"
      case .binary(let bytes): block += "\(entry.key):\(Base64.encode(bytes))\r\n"
      }
    }
    return block
  }
}
