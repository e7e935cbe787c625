/// What every request head to one upstream shares, as bytes made once: building them for each
/// request from Strings cost about 2,500 instructions a call (callgrind), a dozen appends of
/// String views.
struct HTTP1HeadTemplate: Sendable {
  /// Prefixed to every request path.
  let basePath: [UInt8]
  /// From the end of the target to the Content-Length value: the version, Host and the name.
  let afterTarget: [UInt8]
  /// Everything after the Content-Length value for a JSON body: content type, accept and
  /// authorization, each line ended.
  let jsonHeaders: [UInt8]
  /// The same without a content type, for a request with no body (or after one given apart).
  let bodilessHeaders: [UInt8]
  /// Each of the two with the empty line that ends the head, for a request with no headers of
  /// its own.
  let jsonHeadersEnded: [UInt8]
  let bodilessHeadersEnded: [UInt8]

  /// `authorization` is the whole header value, checked by the caller (no CR, LF or NUL).
  init(authority: String, basePath: String, authorization: String?) {
    self.basePath = Array(basePath.utf8)
    afterTarget = Array(" HTTP/1.1\r\nhost: \(authority)\r\ncontent-length: ".utf8)
    let common =
      "\r\naccept: application/json, text/event-stream" + (authorization.map { "\r\nauthorization: \($0)" } ?? "")
    jsonHeaders = Array(("\r\ncontent-type: application/json" + common + "\r\n").utf8)
    bodilessHeaders = Array((common + "\r\n").utf8)
    jsonHeadersEnded = jsonHeaders + Array("\r\n".utf8)
    bodilessHeadersEnded = bodilessHeaders + Array("\r\n".utf8)
  }
}
