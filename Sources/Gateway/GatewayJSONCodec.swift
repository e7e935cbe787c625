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
    guard let types = schema.methodTypes(path: path) else { throw MessageJSONError("\(path) has no JSON mapping") }
    do {
      return try codec.message(fromJSON: json, type: types.input)
    } catch {
      throw MessageJSONError(error.message)
    }
  }

  public func responseJSON(fromMessage message: [UInt8], path: String) throws(MessageJSONError) -> [UInt8] {
    guard let types = schema.methodTypes(path: path) else { throw MessageJSONError("\(path) has no JSON mapping") }
    do {
      return try codec.json(fromMessage: message, type: types.output)
    } catch {
      throw MessageJSONError(error.message)
    }
  }
}
