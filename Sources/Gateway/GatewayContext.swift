import NIOConcurrencyHelpers
import ProtoJSON
import VLLMClient

/// How the Responses RPCs reach vLLM.
public enum ResponsesMode: String, Sendable, CaseIterable {
  /// vLLM's /v1/responses, until the upstream answers that it has no such route; from then on,
  /// chat completions.
  case auto
  /// Always /v1/responses.
  case native
  /// Always chat completions, converted both ways.
  case chat
}

/// What every operation's calls share: the upstream client, the translators, and what the gateway
/// has learnt about the upstream.
struct GatewayContext: Sendable {
  let client: VLLMClient
  let toJSON: ProtoToJSON
  let toProto: JSONToProto
  let responsesMode: ResponsesMode
  /// Set once the upstream has shown it lacks /v1/responses.
  let responsesMissing = NIOLockedValueBox(false)
  /// The rerank path that worked last: /v1/rerank until the upstream shows it only has /rerank.
  let rerankPath = NIOLockedValueBox("/v1/rerank")

  init(client: VLLMClient, responsesMode: ResponsesMode, schema: Schema = .bundled) {
    self.client = client
    self.toJSON = ProtoToJSON(schema: schema)
    self.toProto = JSONToProto(schema: schema)
    self.responsesMode = responsesMode
  }

  var responsesViaChat: Bool {
    responsesMode == .chat || (responsesMode == .auto && responsesMissing.withLockedValue { $0 })
  }
}
