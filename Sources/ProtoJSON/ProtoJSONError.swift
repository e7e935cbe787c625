/// Why a translation failed, in words a client can act on.
public struct ProtoJSONError: Error, Equatable, CustomStringConvertible {
  public let message: String

  public init(_ message: String) {
    self.message = message
  }

  public var description: String { message }
}
