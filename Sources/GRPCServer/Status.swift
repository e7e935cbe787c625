/// A gRPC status: the code and message that end every call.
public struct Status: Sendable, Hashable, CustomStringConvertible {
  /// The canonical gRPC status codes, with their wire values.
  public enum Code: Int, Sendable, Hashable, CaseIterable {
    case ok = 0
    case cancelled = 1
    case unknown = 2
    case invalidArgument = 3
    case deadlineExceeded = 4
    case notFound = 5
    case alreadyExists = 6
    case permissionDenied = 7
    case resourceExhausted = 8
    case failedPrecondition = 9
    case aborted = 10
    case outOfRange = 11
    case unimplemented = 12
    case `internal` = 13
    case unavailable = 14
    case dataLoss = 15
    case unauthenticated = 16

    /// The name the gRPC specification gives the code, as in `DEADLINE_EXCEEDED`.
    public var name: String {
      switch self {
      case .ok: "OK"
      case .cancelled: "CANCELLED"
      case .unknown: "UNKNOWN"
      case .invalidArgument: "INVALID_ARGUMENT"
      case .deadlineExceeded: "DEADLINE_EXCEEDED"
      case .notFound: "NOT_FOUND"
      case .alreadyExists: "ALREADY_EXISTS"
      case .permissionDenied: "PERMISSION_DENIED"
      case .resourceExhausted: "RESOURCE_EXHAUSTED"
      case .failedPrecondition: "FAILED_PRECONDITION"
      case .aborted: "ABORTED"
      case .outOfRange: "OUT_OF_RANGE"
      case .unimplemented: "UNIMPLEMENTED"
      case .internal: "INTERNAL"
      case .unavailable: "UNAVAILABLE"
      case .dataLoss: "DATA_LOSS"
      case .unauthenticated: "UNAUTHENTICATED"
      }
    }
  }

  public var code: Code
  public var message: String

  public init(_ code: Code, _ message: String = "") {
    self.code = code
    self.message = message
  }

  public static let ok = Status(.ok)

  public var description: String {
    message.isEmpty ? code.name : "\(code.name): \(message)"
  }
}

/// Thrown or returned by handlers to end a call with a status other than OK.
public struct StatusError: Error, Sendable, Hashable {
  public var status: Status
  public var trailers: Metadata

  public init(_ code: Status.Code, _ message: String, trailers: Metadata = Metadata()) {
    self.status = Status(code, message)
    self.trailers = trailers
  }
}
