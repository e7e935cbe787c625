import ProtoJSON
import VLLMClient

/// What every operation's calls share: the upstream client and the translators.
struct GatewayContext: Sendable {
  let client: VLLMClient
  let toJSON: ProtoToJSON
  let toProto: JSONToProto

  init(client: VLLMClient, schema: Schema = .bundled) {
    self.client = client
    self.toJSON = ProtoToJSON(schema: schema)
    self.toProto = JSONToProto(schema: schema)
  }
}
