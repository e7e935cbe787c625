import CNGHTTP2

/// The header lists nearly every call sends, laid out once for nghttp2 and flagged NO_COPY, so a
/// plain call copies no header bytes of its own.
enum StaticHeaders {
  /// `:status 200`, `content-type: application/grpc`, `grpc-accept-encoding`.
  // SAFETY of the C boundary: immutable memory allocated once and never freed; nghttp2 only reads it.
  nonisolated(unsafe) static let response = make([
    (":status", "200"), ("content-type", "application/grpc"),
    ("grpc-accept-encoding", CompressionAlgorithm.acceptEncodingHeader),
  ])

  /// `grpc-status: 0`, the trailers of every successful call without trailing metadata.
  // SAFETY of the C boundary: as above.
  nonisolated(unsafe) static let okTrailers = make([("grpc-status", "0")])

  private static func make(_ fields: [(String, String)]) -> UnsafeBufferPointer<nghttp2_nv> {
    let pairs = UnsafeMutableBufferPointer<nghttp2_nv>.allocate(capacity: fields.count)
    for (index, (name, value)) in fields.enumerated() {
      pairs[index] = nghttp2_nv(
        name: permanentCopy(name), value: permanentCopy(value), namelen: name.utf8.count,
        valuelen: value.utf8.count,
        flags: UInt8(NGHTTP2_NV_FLAG_NO_COPY_NAME.rawValue | NGHTTP2_NV_FLAG_NO_COPY_VALUE.rawValue))
    }
    return UnsafeBufferPointer(pairs)
  }

  private static func permanentCopy(_ text: String) -> UnsafeMutablePointer<UInt8> {
    let bytes = Array(text.utf8)
    let memory = UnsafeMutablePointer<UInt8>.allocate(capacity: max(bytes.count, 1))
    memory.initialize(from: bytes, count: bytes.count)
    return memory
  }
}
