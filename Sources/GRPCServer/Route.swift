/// One method the server answers: its path, `/package.Service/Method`, and how to make the
/// handler for each call. The factory runs on the call's event loop.
public struct Route: Sendable {
  public let path: String
  public let makeHandler: @Sendable (ServerCall) -> any ServerCallHandler

  public init(path: String, makeHandler: @escaping @Sendable (ServerCall) -> any ServerCallHandler) {
    self.path = path
    self.makeHandler = makeHandler
  }

  /// A unary method: exactly one request message, then `body` answers with `call.respond` or
  /// `call.finish`.
  public static func unary(
    _ path: String, _ body: @escaping @Sendable (ServerCall, [UInt8]) -> Void
  ) -> Route {
    Route(path: path) { call in SingleRequestCallHandler(call: call, body: body) }
  }

  /// A server-streaming method: one request message, then `body` sends any number of messages and
  /// finishes the call.
  public static func serverStreaming(
    _ path: String, _ body: @escaping @Sendable (ServerCall, [UInt8]) -> Void
  ) -> Route {
    Route(path: path) { call in SingleRequestCallHandler(call: call, body: body) }
  }

  /// A client-streaming or bidirectional method: the handler sees every message as it arrives.
  public static func streaming(
    _ path: String, _ makeHandler: @escaping @Sendable (ServerCall) -> any ServerCallHandler
  ) -> Route {
    Route(path: path, makeHandler: makeHandler)
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
  public private(set) var serviceNames: [String] = []

  public init(_ providers: [any ServiceProvider] = []) {
    for provider in providers { register(provider) }
  }

  public mutating func register(_ provider: any ServiceProvider) {
    if !serviceNames.contains(provider.serviceName) { serviceNames.append(provider.serviceName) }
    for route in provider.routes { routes[route.path] = route }
  }

  func route(for path: String) -> Route? {
    routes[path]
  }

  func knowsService(_ service: Substring) -> Bool {
    serviceNames.contains { $0 == service }
  }
}
