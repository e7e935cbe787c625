import Testing

@testable import GRPCServer

private struct EchoService: ServiceProvider {
  let serviceName = "test.Echo"
  var routes: [Route] { [.unary("/test.Echo/Say") { call, request in call.respond(request) }] }
}

@Suite struct RequestHeadTests {
  private let router = Router([EchoService()])

  private func head(_ fields: [(String, String)], limit: Int = 16 * 1024) -> RequestHead {
    var head = RequestHead()
    for (name, value) in fields { head.add(name: name, value: value, limit: limit, router: router) }
    return head
  }

  private func valid(_ extra: [(String, String)] = [], path: String = "/test.Echo/Say") -> [(String, String)] {
    [
      (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "x"),
      ("content-type", "application/grpc"), ("te", "trailers"),
    ] + extra
  }

  private func rejection(_ head: RequestHead) -> (Int, Status)? {
    if case .reject(let http, let status, _) = head.verdict(router: router) { return (http, status) }
    return nil
  }

  @Test func acceptsAWellFormedRequestAndCollectsMetadata() throws {
    let verdict = head(valid([("x-user", "ann"), ("x-trace-bin", "AAE"), ("grpc-timeout", "5S")]))
      .verdict(router: router)
    guard case .accept(let accepted) = verdict else {
      Issue.record("rejected: \(verdict)")
      return
    }
    #expect(accepted.path == "/test.Echo/Say")
    #expect(accepted.metadata.first("x-user") == "ann")
    #expect(accepted.metadata.firstBinary("x-trace-bin") == [0, 1])
    #expect(accepted.metadata.first("te") == nil)
    #expect(accepted.timeout == Timeout(.seconds(5)))
    #expect(accepted.requestEncoding == .identity)
  }

  /// Common names come from literals; each must still be its own name, and a name of the same
  /// length that is not it must keep its own bytes.
  @Test func commonAndLookalikeMetadataNamesKeepTheirNames() throws {
    let names = [
      "x-api-key", "user-agent", "traceparent", "x-request-id", "authorization", "accept-encoding", "accept",
      "content-length", "x-api-kez", "user-agenu", "tracestate", "x-request-ie", "authorizatioo", "accept-encodinh",
      "accepu", "content-lengti", "x",
    ]
    // A content-length must be digits (HTTPRequestRules), the other values are free text.
    func value(of name: String) -> String { name == "content-length" ? "12" : "value of \(name)" }
    let verdict = head(valid(names.map { ($0, value(of: $0)) })).verdict(router: router)
    guard case .accept(let accepted) = verdict else {
      Issue.record("rejected: \(verdict)")
      return
    }
    #expect(accepted.metadata.map(\.key) == names)
    for name in names { #expect(accepted.metadata.first(name) == value(of: name)) }
  }

  @Test func rejectsOtherMethodsWith405() {
    var fields = valid()
    fields[0] = (":method", "GET")
    #expect(rejection(head(fields))?.0 == 405)
  }

  @Test(arguments: ["text/plain", "application/grpc-web", "application/grpc+json", "application/json"])
  func rejectsOtherContentTypesWith415(contentType: String) {
    var fields = valid()
    fields[4] = ("content-type", contentType)
    #expect(rejection(head(fields))?.0 == 415)
  }

  @Test func requiresTETrailers() {
    let fields = valid().filter { $0.0 != "te" }
    #expect(rejection(head(fields))?.1.code == .internal)
  }

  @Test func namesTheUnknownServiceOrMethod() {
    #expect(
      rejection(head(valid(path: "/test.Echo/Shout")))?.1
        == Status(.unimplemented, "unknown method Shout for service test.Echo"))
    #expect(rejection(head(valid(path: "/other.Svc/Say")))?.1 == Status(.unimplemented, "unknown service other.Svc"))
    #expect(rejection(head(valid(path: "nonsense")))?.1.code == .unimplemented)
  }

  @Test func unsupportedEncodingIsUnimplementedWithAcceptEncoding() throws {
    let rejected = head(valid([("grpc-encoding", "br")])).verdict(router: router)
    guard case .reject(200, let status, let headers) = rejected else {
      Issue.record("not rejected: \(rejected)")
      return
    }
    #expect(status.code == .unimplemented)
    #expect(headers.contains { $0 == ("grpc-accept-encoding", "identity,gzip,deflate") })
  }

  @Test func answersInTheRequestEncodingOnlyWhenAccepted() {
    guard
      case .accept(let accepted) = head(valid([("grpc-encoding", "gzip"), ("grpc-accept-encoding", "identity, gzip")]))
        .verdict(router: router)
    else {
      Issue.record("rejected")
      return
    }
    #expect(accepted.responseEncoding == .gzip)
    guard case .accept(let plain) = head(valid([("grpc-encoding", "gzip")])).verdict(router: router) else {
      Issue.record("rejected")
      return
    }
    #expect(plain.responseEncoding == .identity)
  }

  @Test func rejectsMalformedTimeoutAndBinaryMetadata() {
    #expect(rejection(head(valid([("grpc-timeout", "soon")])))?.1.code == .internal)
    #expect(
      rejection(head(valid([("x-bad-bin", "!!")])))?.1 == Status(.internal, "metadata 'x-bad-bin' is not valid base64"))
  }

  @Test func enforcesTheHeaderListLimit() {
    let big = (0..<10).map { ("x-big-\($0)", String(repeating: "v", count: 200)) }
    #expect(rejection(head(valid(big), limit: 1024))?.1.code == .resourceExhausted)
    #expect(rejection(head(valid(big), limit: 16 * 1024)) == nil)
  }
}
