import GRPCServer
import ProtoJSON

/// The proto3 JSON mapping of the gateway's messages, for Connect's JSON content types: the
/// transport knows no message types, so it asks this by method path.
public struct GatewayJSONCodec: MessageJSONCodec {
  private let schema: Schema
  private let codec: CanonicalJSON

  public init(schema: Schema = .bundled) {
    self.schema = schema
    self.codec = CanonicalJSON(schema: schema)
  }

  public func requestMessage(fromJSON json: [UInt8], path: String) throws(MessageJSONError) -> [UInt8] {
    try convert(path) { types throws(ProtoJSONError) in try codec.message(fromJSON: json, type: types.input) }
  }

  public func responseJSON(fromMessage message: [UInt8], path: String) throws(MessageJSONError) -> [UInt8] {
    try convert(path) { types throws(ProtoJSONError) in try codec.json(fromMessage: message, type: types.output) }
  }

  /// One conversion with the method's types, its failure in the transport's terms.
  private func convert(
    _ path: String, _ body: ((input: String, output: String)) throws(ProtoJSONError) -> [UInt8]
  ) throws(MessageJSONError) -> [UInt8] {
    guard let types = schema.methodTypes(path: path) else { throw MessageJSONError("\(path) has no JSON mapping") }
    do {
      return try body(types)
    } catch {
      throw MessageJSONError(error.message)
    }
  }
}
