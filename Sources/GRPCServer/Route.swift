/// One method the server answers: its path, `/package.Service/Method`, and how to make the
/// handler for each call. The factory runs on the call's event loop.
public struct Route: Sendable {
  /// How a method's calls are handled.
  public enum Kind: Sendable {
    /// Unary and server-streaming: the body runs once the one request message and the client's
    /// half-close have arrived.
    case singleRequest(@Sendable (ServerCall, [UInt8]) -> Void)
    /// Client-streaming and bidirectional: a handler per call sees every message as it arrives.
    case streaming(@Sendable (ServerCall) -> any ServerCallHandler)
  }

  public let path: String
  public let kind: Kind
  /// Whether the method answers with exactly one message (Connect calls such methods with a
  /// bare body rather than a stream).
  public let isUnary: Bool

  public init(path: String, isUnary: Bool = false, kind: Kind) {
    self.path = path
    self.kind = kind
    self.isUnary = isUnary
  }

  /// A unary method: exactly one request message, then `body` answers with `call.respond` or
  /// `call.finish`.
  public static func unary(
    _ path: String, _ body: @escaping @Sendable (ServerCall, [UInt8]) -> Void
  ) -> Route {
    Route(path: path, isUnary: true, kind: .singleRequest(body))
  }

  /// A server-streaming method: one request message, then `body` sends any number of messages and
  /// finishes the call.
  public static func serverStreaming(
    _ path: String, _ body: @escaping @Sendable (ServerCall, [UInt8]) -> Void
  ) -> Route {
    Route(path: path, kind: .singleRequest(body))
  }

  /// A client-streaming or bidirectional method: the handler sees every message as it arrives.
  public static func streaming(
    _ path: String, _ makeHandler: @escaping @Sendable (ServerCall) -> any ServerCallHandler
  ) -> Route {
    Route(path: path, kind: .streaming(makeHandler))
  }
}

extension Route {
  /// The same method behind a gate: a call the gate refuses (a status) ends with it before the
  /// method sees anything. The gate runs on the call's event loop once its headers are in.
  public func gated(by gate: @escaping @Sendable (ServerCall) -> Status?) -> Route {
    switch kind {
    case .singleRequest(let body):
      return Route(
        path: path, isUnary: isUnary,
        kind: .singleRequest { call, request in
          if let refusal = gate(call) {
            call.finish(refusal)
          } else {
            body(call, request)
          }
        })
    case .streaming(let makeHandler):
      return Route(
        path: path,
        kind: .streaming { call in
          if let refusal = gate(call) {
            call.finish(refusal)
            return IgnoringHandler()
          }
          return makeHandler(call)
        })
    }
  }
}

/// The handler of a call already finished: it reads and drops what still arrives.
private final class IgnoringHandler: ServerCallHandler {
  func didReceive(_ message: [UInt8]) {}
  func didReceiveEnd() {}
}

/// A service whose every method is behind the same gate.
public struct GatedService: ServiceProvider {
  public let serviceName: String
  public let routes: [Route]

  public init(_ service: any ServiceProvider, gate: @escaping @Sendable (ServerCall) -> Status?) {
    self.serviceName = service.serviceName
    self.routes = service.routes.map { $0.gated(by: gate) }
  }
}

/// A gRPC service: a name (`package.Service`) and its methods.
public protocol ServiceProvider: Sendable {
  var serviceName: String { get }
  var routes: [Route] { get }
}

/// Finds the route for a request path.
public struct Router: Sendable {
  private var routes: [String: Route] = [:]
  /// The same routes by their paths' bytes (see RoutePathTable).
  private var routesByPath = RoutePathTable()
  public private(set) var serviceNames: [String] = []

  public init(_ providers: [any ServiceProvider] = []) {
    for provider in providers { register(provider) }
  }

  public mutating func register(_ provider: any ServiceProvider) {
    if !serviceNames.contains(provider.serviceName) { serviceNames.append(provider.serviceName) }
    for route in provider.routes {
      routes[route.path] = route
      routesByPath.insert(route)
    }
  }

  func route(for path: String) -> Route? {
    routes[path]
  }

  func route(forPath bytes: UnsafeRawBufferPointer) -> Route? {
    routesByPath.route(forPath: bytes)
  }

  func knowsService(_ service: Substring) -> Bool {
    serviceNames.contains { $0 == service }
  }
}
