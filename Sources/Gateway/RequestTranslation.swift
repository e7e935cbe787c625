import ProtoJSON

/// What the gateway sends vLLM for one request message, without an upstream or a call: the code
/// the RPCs run (UpstreamRequestBody, and ResponsesChatTranslation for the Responses fallback),
/// opened up for the fuzz target over request translation, fuzz-request-json. Serving goes
/// through VLLMService, not this.
public enum RequestTranslation {
  private static let converter = ProtoToJSON(schema: .bundled)

  /// Resolved in the converter's schema, as the service resolves its operations: a call is
  /// translated with its request's schema at hand, as when serving.
  private static let operations: [String: Operation] = Dictionary(
    (VLLMService.operations + VLLMService.audioOperations + [VLLMService.rerank]).filter { !$0.isGet }.map {
      (String($0.rpc.split(separator: "/").last!), $0.resolved(in: converter.schema))
    },
    uniquingKeysWith: { first, _ in first })

  /// The VLLMService methods whose request message becomes a vLLM request body, by name
  /// ("CreateChatCompletion", ...); ListModels sends none.
  public static var methods: [String] { operations.keys.sorted() }

  /// The body, JSON or (for the audio methods) a multipart form, and its content type that the
  /// RPC `method` sends vLLM for the serialized request message `request`. With `viaChat`, a
  /// Responses method's request as the chat completion an upstream without /v1/responses gets.
  /// Throws when the request does not parse; nil for a method not in `methods`.
  /// `usesShapes`: whether the operation's learnt request shape may write it, as when serving
  /// (see `RequestTemplate`); without, the general way alone.
  public static func upstreamBody(
    method: String, request: [UInt8], viaChat: Bool = false, usesShapes: Bool = true
  ) throws -> (bytes: [UInt8], contentType: String)? {
    guard let operation = operations[method] else { return nil }
    return try upstreamBody(operation: operation, request: request, viaChat: viaChat, usesShapes: usesShapes)
  }

  /// What `upstreamBody` does for one method, the method looked up once: translation-bench
  /// counts a request's translation without hashing the method's name.
  public static func translator(
    method: String, viaChat: Bool = false
  ) -> (@Sendable ([UInt8]) throws -> (bytes: [UInt8], contentType: String))? {
    guard let operation = operations[method] else { return nil }
    return { request in try upstreamBody(operation: operation, request: request, viaChat: viaChat) }
  }

  private static func upstreamBody(
    operation: Operation, request: [UInt8], viaChat: Bool, usesShapes: Bool = true
  ) throws -> (bytes: [UInt8], contentType: String) {
    let stream = operation.kind == .serverStreaming
    guard viaChat && operation.upstreamPath == "/v1/responses" else {
      return try UpstreamRequestBody.make(
        from: request, operation: operation, converter: converter, stream: stream,
        requestMessage: operation.requestMessage, usesShapes: usesShapes)
    }
    // As ResponsesViaChatCall.start does it.
    let json = try UpstreamRequestBody.json(
      from: request, operation: operation, converter: converter, stream: false,
      requestMessage: operation.requestMessage, usesShapes: usesShapes)
    let chat = ResponsesChatTranslation.chatRequest(
      fromResponses: ResponsesChatTranslation.object(json) ?? [:], stream: stream)
    return (ResponsesChatTranslation.data(chat), "application/json")
  }
}
