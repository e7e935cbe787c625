import ProtoJSON

/// The JSON body vLLM gets for a request message: the message's fields, the model name without a
/// "vllm/" prefix, and `stream` set by the gateway.
enum UpstreamRequestBody {
  static let modelPrefix: StaticString = "vllm/"

  /// The body for `operation` and its content type.
  static func make(
    from request: [UInt8], operation: Operation, context: GatewayContext, stream: Bool
  ) throws -> (bytes: [UInt8], contentType: String) {
    try make(
      from: request, operation: operation, converter: context.toJSON, stream: stream,
      requestMessage: operation.requestMessage)
  }

  /// The same with the converter alone (RequestTranslation has no upstream, so no context), and
  /// the request's schema when the caller has it from the converter's schema. `usesShapes`:
  /// whether the operation's request shape may write it (see `RequestTemplate`); the fuzz
  /// target compares the two ways.
  static func make(
    from request: [UInt8], operation: Operation, converter: ProtoToJSON, stream: Bool,
    requestMessage: MessageSchema? = nil, usesShapes: Bool = true
  ) throws -> (bytes: [UInt8], contentType: String) {
    switch operation.body {
    case .json:
      let json = try json(
        from: request, operation: operation, converter: converter, stream: stream, requestMessage: requestMessage,
        usesShapes: usesShapes)
      return (json, "application/json")
    case .transcriptionForm:
      var overrides: [String: String] = [:]
      if let model = try prefixedModel(in: request) { overrides["model"] = model }
      if stream {
        overrides["stream"] = "true"
        // The final usage is always delivered, as for chat (stream_include_usage is field 9).
        if try !hasField(9, in: request) { overrides["stream_include_usage"] = "true" }
      }
      var form = try MultipartForm.transcription(from: request, schema: converter.schema, overrides: overrides)
      let contentType = form.contentType
      return (form.finish(), contentType)
    }
  }

  static func json(
    from request: [UInt8], operation: Operation, converter: ProtoToJSON, stream: Bool,
    extraOverrides: [(key: String, json: String)] = [], requestMessage: MessageSchema? = nil, usesShapes: Bool = true
  ) throws -> [UInt8] {
    // Most calls add nothing: `+` would make a new array for them all the same (~100 instructions).
    var overrides = operation.upstreamOverrides
    if !extraOverrides.isEmpty { overrides += extraOverrides }
    let ownOverrides = overrides.count
    if stream {
      overrides.append(("stream", "true"))
      if let field = operation.streamOptionsField, try !hasField(field, in: request) {
        overrides.append(("stream_options", "{\"include_usage\":true}"))
      }
    }
    func translated(_ overrides: [(key: String, json: String)]) throws -> [UInt8] {
      if let requestMessage {
        // The operation's shapes are its own request message's, learnt with its own overrides:
        // a continuation's extra ones would have it learn a shape for them in turn.
        let shapes =
          usesShapes && extraOverrides.isEmpty && requestMessage === operation.requestMessage
          ? operation.requestShapes : nil
        return try converter.json(from: request, message: requestMessage, overrides: overrides, shapes: shapes)
      }
      return try converter.json(from: request, typeName: operation.requestType, overrides: overrides)
    }
    // The model is field 1, and the translation writes fields in schema order (in one pass only
    // when the wire has them so): a model opens the body, and a `vllm/` there is cut out of the
    // bytes written, with no walk of the request to find the field first (about 400
    // instructions a call, callgrind). Otherwise the walk below says whether the body written
    // (no model in it first: none in the request, or a form not foreseen here) needs the bare
    // name as an override.
    var written: [UInt8]? = nil
    if let requestMessage, requestMessage === operation.requestMessage, operation.modelIsFieldOne,
      !overrides.contains(where: { $0.key == "model" })
    {
      var json = try translated(overrides)
      let opening = RoutingKeyReader.modelOpening
      let prefixed = opening.count + modelPrefixBytes.count
      // Compared a word at a time: `starts(with:)` over the arrays cost about 15 instructions a byte.
      if json.count > opening.count, json.span.extracting(0..<opening.count).hasSameBytes(as: opening.span) {
        if json.count > prefixed,
          json.span.extracting(opening.count..<prefixed).hasSameBytes(as: modelPrefixBytes.span)
        {
          json.removeSubrange(opening.count..<prefixed)
        }
        return json
      }
      written = json
    }
    if let model = try prefixedModel(in: request) {
      overrides.insert(("model", quoted(model)), at: ownOverrides)
      return try translated(overrides)
    }
    return try written ?? translated(overrides)
  }

  /// `modelPrefix`'s bytes, for comparing in place.
  private static let modelPrefixBytes = modelPrefix.withUTF8Buffer { Array($0) }

  private static func quoted(_ text: String) -> String {
    var writer = JSONWriter()
    writer.string(text)
    return String(decoding: writer.bytes, as: UTF8.self)
  }

  /// The model (field 1) without its `vllm/` when the request names it so; nil otherwise. Most
  /// requests name a bare model: its bytes are compared, no String made (about 150 instructions
  /// a call, callgrind).
  static func prefixedModel(in request: [UInt8]) throws -> String? {
    var reader = ProtoWireReader(request)
    var model: Range<Int>? = nil
    while let field = try reader.next() {
      if field.number == 1 && field.wireType == .lengthDelimited { model = field.range }
    }
    guard let model else { return nil }
    let nameStart = model.lowerBound + modelPrefix.utf8CodeUnitCount
    guard nameStart <= model.upperBound, request[model.lowerBound..<nameStart].equals(modelPrefix) else { return nil }
    return String(decoding: request[nameStart..<model.upperBound], as: UTF8.self)
  }

  /// The last value of a top-level string field.
  static func topLevelString(field number: Int32, in bytes: [UInt8]) throws -> String? {
    var reader = ProtoWireReader(bytes)
    var value: String? = nil
    while let field = try reader.next() {
      if field.number == number && field.wireType == .lengthDelimited {
        value = String(decoding: bytes[field.range], as: UTF8.self)
      }
    }
    return value
  }

  private static func hasField(_ number: Int32, in bytes: [UInt8]) throws -> Bool {
    var reader = ProtoWireReader(bytes)
    while let field = try reader.next() {
      if field.number == number { return true }
    }
    return false
  }
}
