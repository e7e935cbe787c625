import Testing

@testable import GRPCServer

@Suite struct RoutePathTableTests {
  private func route(_ path: String, unary: Bool = true) -> Route {
    Route(path: path, isUnary: unary, kind: .singleRequest { _, _ in })
  }

  private func found(_ table: RoutePathTable, _ path: String) -> Route? {
    Array(path.utf8).withUnsafeBytes { table.route(forPath: $0) }
  }

  /// Every path finds its own route, whatever its length (the hash reads the last sixteen bytes
  /// of a long path and every byte of a short one) and however many share a service, and the
  /// table grows past its first slots on the way.
  @Test func everyPathFindsItsOwnRoute() {
    var paths = ["/", "/a", "/a.B/C", "/pkg.Svc/Method1", "/pkg.Svc/Method2", "/pkg.Svc/Method12", ""]
    paths += (0..<200).map { "/vllmgateway.v1.VLLMService/Method\($0)" }
    // Paths that agree in their last sixteen bytes and length, so they share a hash and a slot.
    paths += ["/one.Service/SameTailOfSixteen", "/two.Service/SameTailOfSixteen"]
    var table = RoutePathTable()
    for path in paths { table.insert(route(path)) }
    for path in paths { #expect(found(table, path)?.path == path) }
  }

  @Test func anUnknownPathFindsNothing() {
    var table = RoutePathTable()
    for index in 0..<20 { table.insert(route("/pkg.Svc/M\(index)")) }
    for path in ["/pkg.Svc/M20", "/pkg.Svc/m1", "/pkg.Svc/M1 ", "", "/", "/pkg.Svc/M1/pkg.Svc/M1"] {
      #expect(found(table, path) == nil)
    }
    #expect(found(RoutePathTable(), "/pkg.Svc/M1") == nil)
  }

  @Test func aPathRegisteredAgainReplacesItsRoute() {
    var table = RoutePathTable()
    table.insert(route("/pkg.Svc/Method", unary: true))
    table.insert(route("/pkg.Svc/Other"))
    table.insert(route("/pkg.Svc/Method", unary: false))
    #expect(found(table, "/pkg.Svc/Method")?.isUnary == false)
    #expect(found(table, "/pkg.Svc/Other")?.isUnary == true)
  }
}
