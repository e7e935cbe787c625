import ProtoJSON

/// One vLLM operation as the gateway serves it: the RPC's path, the upstream path, and the
/// protobuf types on either side. A new operation is a value of this type (plus its messages).
/// A class, immutable: every call of the operation refers to the one instance instead of
/// carrying a copy of its strings (some 130 bytes per open stream).
final class Operation: Sendable {
  enum Kind: Sendable {
    case unary
    case serverStreaming
  }

  /// `/vllmgateway.v1.VLLMService/<Method>`.
  let rpc: String
  let kind: Kind
  let upstreamPath: String
  let requestType: String
  /// The reply's type, or for a streaming RPC the type of each message.
  let responseType: String
  /// For streaming: the event that ends the stream (vLLM's `[DONE]` when nil).
  let terminalEvents: Set<String>
  /// For streaming: the request field (number) holding stream_options, which the gateway fills
  /// in so the final usage is always delivered.
  let streamOptionsField: Int32?
  /// GET operations send no body.
  let isGet: Bool
  /// How the request travels: JSON, or the multipart form of the audio endpoints.
  let body: Body
  /// A reply that is not JSON (plain text, SRT, VTT) is the response message's `text`.
  let acceptsPlainText: Bool

  enum Body: Sendable, Equatable {
    case json
    case transcriptionForm
  }
  /// Top-level JSON keys the gateway always sets, as JSON text.
  let upstreamOverrides: [(key: String, json: String)]
  /// The request's and the reply's message schemas, once `resolved` has looked them up: a lookup
  /// by name hashes the type's name, about 800 instructions a call each way (callgrind).
  let requestMessage: MessageSchema?
  let responseMessage: MessageSchema?
  /// Where its reply's translation holds vLLM's token counts, once resolved (unary replies).
  let replyUsage: ReplyUsageFields?
  /// Whether the resolved request message's field 1 is its `model`: then a translation that
  /// opens with `{"model":"` wrote it first (see `UpstreamRequestBody.json`).
  let modelIsFieldOne: Bool
  /// The shape its JSON replies share, learnt from one (unary operations; see `ReplyTemplate`).
  let replyShapes = ReplyShapes()
  /// The shape its requests share, learnt from one (see `RequestTemplate`).
  let requestShapes = RequestShapes()
  /// What follows the head of its streams' token chunks, learnt by one (streaming operations;
  /// see `RepeatedChunks`).
  let repeatedChunks = RepeatedChunks()

  init(
    rpc: String, kind: Kind, upstreamPath: String, requestType: String, responseType: String,
    terminalEvents: Set<String> = [], streamOptionsField: Int32? = nil, isGet: Bool = false,
    upstreamOverrides: [(key: String, json: String)] = [], body: Body = .json, acceptsPlainText: Bool = false
  ) {
    self.isGet = isGet
    self.body = body
    self.acceptsPlainText = acceptsPlainText
    self.upstreamOverrides = upstreamOverrides
    self.rpc = "/vllmgateway.v1.VLLMService/" + rpc
    self.kind = kind
    self.upstreamPath = upstreamPath
    self.requestType = "vllmgateway.v1." + requestType
    self.responseType = "vllmgateway.v1." + responseType
    self.terminalEvents = terminalEvents
    self.streamOptionsField = streamOptionsField
    self.requestMessage = nil
    self.responseMessage = nil
    self.replyUsage = nil
    self.modelIsFieldOne = false
  }

  /// A copy of `operation` with the given message schemas.
  private init(
    _ operation: Operation, requestMessage: MessageSchema?, responseMessage: MessageSchema?,
    replyUsage: ReplyUsageFields?
  ) {
    self.isGet = operation.isGet
    self.body = operation.body
    self.acceptsPlainText = operation.acceptsPlainText
    self.upstreamOverrides = operation.upstreamOverrides
    self.rpc = operation.rpc
    self.kind = operation.kind
    self.upstreamPath = operation.upstreamPath
    self.requestType = operation.requestType
    self.responseType = operation.responseType
    self.terminalEvents = operation.terminalEvents
    self.streamOptionsField = operation.streamOptionsField
    self.requestMessage = requestMessage
    self.responseMessage = responseMessage
    self.replyUsage = replyUsage
    self.modelIsFieldOne =
      requestMessage.flatMap { message in message.fieldIndex(number: 1).map { message.fields[$0].name == "model" } }
      ?? false
  }

  /// The operation with its message schemas looked up in `schema`, which must be the schema of
  /// the translators its calls use (the service's context's).
  func resolved(in schema: Schema) -> Operation {
    let responseMessage = schema.message(responseType)
    return Operation(
      self, requestMessage: schema.message(requestType), responseMessage: responseMessage,
      replyUsage: kind == .unary ? responseMessage.flatMap { ReplyUsageFields(of: $0, in: schema) } : nil)
  }
}
