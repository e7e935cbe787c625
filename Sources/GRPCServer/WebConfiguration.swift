/// gRPC-Web and Connect next to gRPC on the same port, over HTTP/2 and HTTP/1.1, and which web
/// origins may call them from a browser (CORS).
public struct WebConfiguration: Sendable {
  /// Origins (`https://app.example.com`) whose pages may call the server; `*` allows any. Empty:
  /// browsers on other origins are refused, while clients that send no CORS preflight are not
  /// affected.
  public var allowedOrigins: [String]
  /// Converts messages to and from the JSON mapping of their types, for Connect's JSON content
  /// types; without one those are refused as unimplemented.
  public var codec: (any MessageJSONCodec)?
  /// How long browsers may cache a preflight's answer.
  public var preflightMaxAgeSeconds: Int = 7200

  public init(allowedOrigins: [String] = [], codec: (any MessageJSONCodec)? = nil) {
    self.allowedOrigins = allowedOrigins
    self.codec = codec
  }

  /// The value for `access-control-allow-origin` when `origin` may call, else nil.
  func allowedOrigin(_ origin: String?) -> String? {
    guard let origin else { return nil }
    for allowed in allowedOrigins where allowed == "*" || allowed == origin { return origin }
    return nil
  }
}

/// A connection's hold on the web configuration: one reference, so the checks of every request
/// pass a pointer rather than copy (and count references to) the struct's array and codec.
final class WebSupport {
  let configuration: WebConfiguration

  init(_ configuration: WebConfiguration) {
    self.configuration = configuration
  }

  var codec: (any MessageJSONCodec)? { configuration.codec }

  func allowedOrigin(_ origin: String?) -> String? { configuration.allowedOrigin(origin) }
}

/// The JSON mapping of a server's messages: the server itself knows no message types.
public protocol MessageJSONCodec: Sendable {
  /// The request message of the method at `path` (`/package.Service/Method`), from its JSON.
  func requestMessage(fromJSON json: [UInt8], path: String) throws(MessageJSONError) -> [UInt8]
  /// A response message of the method at `path`, as JSON.
  func responseJSON(fromMessage message: [UInt8], path: String) throws(MessageJSONError) -> [UInt8]
}

/// Why a message could not be converted, in words for the client.
public struct MessageJSONError: Error, Sendable {
  public var message: String

  public init(_ message: String) {
    self.message = message
  }
}
