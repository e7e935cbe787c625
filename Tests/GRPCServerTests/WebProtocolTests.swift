import Testing

@testable import GRPCServer

private struct StreamingService: ServiceProvider {
  let serviceName = "test.Web"
  var routes: [Route] {
    [
      .unary("/test.Web/Say") { call, request in call.respond(request) },
      .serverStreaming("/test.Web/Stream") { call, request in call.respond(request) },
    ]
  }
}

/// The pieces of gRPC-Web and Connect that need no socket: content types, base64 text bodies,
/// Connect's error JSON, the HTTP/1-or-2 decision, and the header checks.
@Suite struct WebProtocolTests {
  private let router = Router([StreamingService()])

  @Test func contentTypesNameTheirProtocols() {
    #expect(WireProtocol(contentType: "application/grpc") == .grpc)
    #expect(WireProtocol(contentType: "application/grpc-web") == .grpcWeb)
    #expect(WireProtocol(contentType: "application/grpc-web+proto") == .grpcWeb)
    #expect(WireProtocol(contentType: "Application/GRPC-Web-Text+proto") == .grpcWebText)
    #expect(WireProtocol(contentType: "application/json; charset=utf-8") == .connectUnaryJSON)
    #expect(WireProtocol(contentType: "application/proto") == .connectUnaryProto)
    #expect(WireProtocol(contentType: "application/connect+json") == .connectStreamJSON)
    #expect(WireProtocol(contentType: "application/connect+proto") == .connectStreamProto)
    #expect(WireProtocol(contentType: "application/grpc-web+json") == nil)
    #expect(WireProtocol(contentType: "text/plain") == nil)
  }

  @Test func base64TextDecodesAcrossSplitsAndPaddedPieces() throws {
    // Two messages encoded separately, each padded, then cut at awkward places.
    let pieces = [Base64.encodeBytes([1, 2, 3, 4], padded: true), Base64.encodeBytes([5], padded: true)]
    #expect(pieces[0] == Array("AQIDBA==".utf8))
    let text = pieces[0] + pieces[1]
    for cut in 0...text.count {
      var stream = Base64Stream()
      var out: [UInt8] = []
      try text[..<cut].withUnsafeBytes { try stream.decode($0, into: &out) }
      try text[cut...].withUnsafeBytes { try stream.decode($0, into: &out) }
      #expect(out == [1, 2, 3, 4, 5], "cut at \(cut)")
      #expect(!stream.hasPartialGroup)
    }
  }

  @Test func base64TextRefusesWhatIsNotBase64() {
    for bad in ["AQ=B", "A===", "AQ!D", "=AAA"] {
      var stream = Base64Stream()
      var out: [UInt8] = []
      #expect(throws: Base64Stream.Failure.self, "\(bad)") {
        try Array(bad.utf8).withUnsafeBytes { try stream.decode($0, into: &out) }
      }
    }
    var stream = Base64Stream()
    var out: [UInt8] = []
    try? Array("AQI".utf8).withUnsafeBytes { try stream.decode($0, into: &out) }
    #expect(stream.hasPartialGroup)
  }

  @Test func connectErrorsCarryCodeMessageAndDetails() {
    #expect(ConnectError.codeName(.cancelled) == "canceled")
    #expect(ConnectError.codeName(.resourceExhausted) == "resource_exhausted")
    #expect(ConnectError.httpStatus(.notFound) == 404)
    #expect(ConnectError.httpStatus(.resourceExhausted) == 429)
    #expect(ConnectError.httpStatus(.cancelled) == 499)
    // google.rpc.Status{code: 5, message: "m", details: [Any{type_url, value: [0x08, 0x01]}]}
    let typeURL = Array("type.googleapis.com/google.rpc.ErrorInfo".utf8)
    let any: [UInt8] = [0x0A, UInt8(typeURL.count)] + typeURL + [0x12, 0x02, 0x08, 0x01]
    let status: [UInt8] = [0x08, 0x05, 0x12, 0x01, UInt8(ascii: "m"), 0x1A, UInt8(any.count)] + any
    var trailers = Metadata()
    trailers.add("grpc-status-details-bin", binary: status)
    trailers.add("x-served-by", "a\"b")
    let json = String(
      decoding: ConnectError.json(Status(.notFound, "no \"model\"\n"), trailers: trailers), as: UTF8.self)
    #expect(
      json
        == #"{"code":"not_found","message":"no \"model\"\u000a","details":[{"type":"google.rpc.ErrorInfo","value":"CAE"}]}"#
    )
    let end = String(decoding: ConnectError.endStreamMessage(.ok, trailers: trailers), as: UTF8.self)
    #expect(end == #"{"metadata":{"x-served-by":["a\"b"]}}"#)
    #expect(String(decoding: ConnectError.endStreamMessage(.ok, trailers: Metadata()), as: UTF8.self) == "{}")
  }

  @Test func truncatedStatusDetailsAreLeftOut() {
    #expect(ConnectError.statusDetails([0x1A, 0x10, 0x0A]).isEmpty)
    #expect(ConnectError.statusDetails([0xFF, 0xFF, 0xFF]).isEmpty)
  }

  @Test func theFirstBytesTellHTTP1FromHTTP2() {
    let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    #expect(ProtocolSniffer.speaksHTTP1(preface) == false)
    #expect(ProtocolSniffer.speaksHTTP1(Array(preface.prefix(3))) == nil)
    #expect(ProtocolSniffer.speaksHTTP1(Array("P".utf8)) == nil)
    #expect(ProtocolSniffer.speaksHTTP1(Array("POS".utf8)) == nil)
    #expect(ProtocolSniffer.speaksHTTP1(Array("POST /a HTTP/1.1\r\n".utf8)) == true)
    #expect(ProtocolSniffer.speaksHTTP1(Array("OPTIONS /a HTTP/1.1\r\n".utf8)) == true)
    #expect(ProtocolSniffer.speaksHTTP1(Array("\u{16}\u{03}\u{01}garbage".utf8)) == false)
  }

  private func head(_ fields: [(String, String)]) -> RequestHead {
    var head = RequestHead()
    for (name, value) in fields { head.add(name: name, value: value, limit: 16 * 1024, router: router) }
    return head
  }

  private func webRequest(_ contentType: String, path: String = "/test.Web/Say", _ extra: [(String, String)] = [])
    -> [(String, String)]
  {
    [(":method", "POST"), (":scheme", "http"), (":path", path), ("content-type", contentType)] + extra
  }

  @Test func webCallsNeedNoTETrailersAndLoseTheirSteeringHeaders() {
    let verdict = head(
      webRequest(
        "application/connect+proto", [("connect-timeout-ms", "1500"), ("connect-protocol-version", "1"), ("x-a", "b")])
    ).verdict(router: router, web: WebSupport(WebConfiguration()))
    guard case .accept(let accepted) = verdict else {
      Issue.record("refused: \(verdict)")
      return
    }
    #expect(accepted.web?.wire == .connectStreamProto)
    #expect(accepted.timeout == Timeout(.milliseconds(1500)))
    #expect(accepted.metadata.first("x-a") == "b")
    #expect(accepted.metadata.first("connect-protocol-version") == nil)
  }

  @Test func webCallsAreRefusedInTheirOwnProtocol() {
    func refusal(_ fields: [(String, String)], web: WebSupport? = WebSupport(WebConfiguration())) -> Status? {
      if case .rejectWeb(_, let status) = head(fields).verdict(router: router, web: web) { return status }
      return nil
    }
    #expect(refusal(webRequest("application/proto", path: "/test.Web/Stream"))?.code == .unimplemented)
    #expect(refusal(webRequest("application/json"))?.code == .unimplemented)  // no codec
    #expect(refusal(webRequest("application/proto", [("connect-timeout-ms", "soon")]))?.code == .invalidArgument)
    #expect(refusal(webRequest("application/grpc-web", path: "/test.Web/Nope"))?.code == .unimplemented)
    // Without web support the same request is refused as a wrong content-type, as before.
    guard case .reject(let http, _, _) = head(webRequest("application/grpc-web")).verdict(router: router, web: nil)
    else {
      Issue.record("accepted without web support")
      return
    }
    #expect(http == 415)
  }

  @Test func preflightsAreRecognised() {
    let fields = [
      (":method", "OPTIONS"), (":path", "/test.Web/Say"), ("origin", "https://app.test"),
      ("access-control-request-headers", "content-type,x-grpc-web"),
    ]
    guard
      case .preflight(let origin, let headers) = head(fields).verdict(
        router: router, web: WebSupport(WebConfiguration()))
    else {
      Issue.record("not a preflight")
      return
    }
    #expect(origin == "https://app.test")
    #expect(headers == "content-type,x-grpc-web")
    #expect(
      WebConfiguration(allowedOrigins: ["https://app.test"]).allowedOrigin("https://app.test") == "https://app.test")
    #expect(WebConfiguration(allowedOrigins: ["https://app.test"]).allowedOrigin("https://evil.test") == nil)
    #expect(WebConfiguration(allowedOrigins: ["*"]).allowedOrigin("https://any.test") == "https://any.test")
  }
}
