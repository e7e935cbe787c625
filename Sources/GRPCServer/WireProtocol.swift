/// The protocol a call speaks on its stream, chosen by the request's content-type: gRPC itself,
/// gRPC-Web (binary or base64 text, for browsers and HTTP/1.1), or Connect (unary with a bare
/// body, or enveloped streams; protobuf or JSON). Handlers never see the difference: they get and
/// send protobuf messages, and the call frames them as its protocol wants.
enum WireProtocol: UInt8, Sendable {
  case grpc
  case grpcWeb
  case grpcWebText
  case connectUnaryProto
  case connectUnaryJSON
  case connectStreamProto
  case connectStreamJSON

  var isConnect: Bool { rawValue >= WireProtocol.connectUnaryProto.rawValue }
  var isConnectUnary: Bool { self == .connectUnaryProto || self == .connectUnaryJSON }
  var isGRPCWeb: Bool { self == .grpcWeb || self == .grpcWebText }
  var isJSON: Bool { self == .connectUnaryJSON || self == .connectStreamJSON }

  /// The protocol a content-type names, nil when it names none this server speaks. Parameters
  /// (`; charset=utf-8`) and letter case do not matter.
  init?(contentType: String) {
    var essence = Substring(contentType)
    if let semicolon = essence.firstIndex(of: ";") { essence = essence[..<semicolon] }
    switch essence.trimmingSpaces.lowercased() {
    case "application/grpc", "application/grpc+proto": self = .grpc
    case "application/grpc-web", "application/grpc-web+proto": self = .grpcWeb
    case "application/grpc-web-text", "application/grpc-web-text+proto": self = .grpcWebText
    case "application/proto": self = .connectUnaryProto
    case "application/json": self = .connectUnaryJSON
    case "application/connect+proto": self = .connectStreamProto
    case "application/connect+json": self = .connectStreamJSON
    default: return nil
    }
  }

  /// The content-type of successful responses.
  var responseContentType: String {
    switch self {
    case .grpc: "application/grpc"
    case .grpcWeb: "application/grpc-web+proto"
    case .grpcWebText: "application/grpc-web-text+proto"
    case .connectUnaryProto: "application/proto"
    case .connectUnaryJSON: "application/json"
    case .connectStreamProto: "application/connect+proto"
    case .connectStreamJSON: "application/connect+json"
    }
  }
}

extension Substring {
  fileprivate var trimmingSpaces: Substring {
    var text = self
    while text.first == " " || text.first == "\t" { text.removeFirst() }
    while text.last == " " || text.last == "\t" { text.removeLast() }
    return text
  }
}
