import ProtoJSON

/// The JSON body vLLM gets for a request message: the message's fields, the model name without a
/// "vllm/" prefix, and `stream` set by the gateway.
enum UpstreamRequestBody {
  static let modelPrefix = "vllm/"

  static func json(
    from request: [UInt8], operation: Operation, converter: ProtoToJSON, stream: Bool
  ) throws -> [UInt8] {
    var overrides = operation.upstreamOverrides
    if let model = try topLevelString(field: 1, in: request), model.hasPrefix(modelPrefix) {
      var writer = JSONWriter()
      writer.string(String(model.dropFirst(modelPrefix.count)))
      overrides.append(("model", String(decoding: writer.bytes, as: UTF8.self)))
    }
    if stream {
      overrides.append(("stream", "true"))
      if let field = operation.streamOptionsField, try !hasField(field, in: request) {
        overrides.append(("stream_options", "{\"include_usage\":true}"))
      }
    }
    return try converter.json(from: request, typeName: operation.requestType, overrides: overrides)
  }

  private static func topLevelString(field number: Int32, in bytes: [UInt8]) throws -> String? {
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
