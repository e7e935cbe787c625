/// The message encodings this server speaks in `grpc-encoding` and `grpc-accept-encoding`.
public enum CompressionAlgorithm: String, Sendable, Hashable, CaseIterable {
  case identity
  case gzip
  case deflate

  /// What the server advertises in `grpc-accept-encoding`.
  static let acceptEncodingHeader = "identity,gzip,deflate"

  init?(headerValue: some StringProtocol) {
    self.init(rawValue: headerValue.trimmingWhitespace().lowercased())
  }

  /// The best algorithm the client lists in its `grpc-accept-encoding`, preferring gzip.
  public static func preferred(fromAcceptEncoding header: String) -> CompressionAlgorithm? {
    let offered = header.split(separator: ",").compactMap { CompressionAlgorithm(headerValue: $0) }
    if offered.contains(.gzip) { return .gzip }
    if offered.contains(.deflate) { return .deflate }
    return nil
  }
}

extension StringProtocol {
  func trimmingWhitespace() -> String {
    var slice = Substring(self)
    while let first = slice.first, first == " " || first == "\t" { slice.removeFirst() }
    while let last = slice.last, last == " " || last == "\t" { slice.removeLast() }
    return String(slice)
  }
}
