/// The canonical proto3 JSON mapping (https://protobuf.dev/programming-guides/json/), both ways:
/// what Connect's `application/json` and `application/connect+json` carry. Separate from vLLM's
/// JSON (`ProtoToJSON`, `JSONToProto`), which names fields as vLLM does and is lenient where
/// this is strict.
public struct CanonicalJSON: Sendable {
  public let schema: Schema
  /// Nesting deeper than this (objects and arrays, counted in the JSON) is refused, both ways,
  /// before it can exhaust the stack; the same bound as protobuf's own JSON parsers.
  public static let maximumDepth = 100

  /// What the codec needs of each message beyond its schema, made once here so that neither
  /// `Schema` loading nor vLLM's translation pays for it.
  struct MessageInfo: Sendable {
    /// Field indices by JSON key: the json_name, and the proto name, which parsers also accept.
    let fieldsByKey: [String: Int]
    let wellKnownType: WellKnownType?
  }

  private let info: [ObjectIdentifier: MessageInfo]

  public init(schema: Schema) {
    self.schema = schema
    var info: [ObjectIdentifier: MessageInfo] = [:]
    info.reserveCapacity(schema.messages.count)
    for message in schema.messages.values {
      var keys: [String: Int] = [:]
      keys.reserveCapacity(message.fields.count * 2)
      for (index, field) in message.fields.enumerated() { keys[field.jsonName] = index }
      // A json_name wins over another field's proto name (protoc refuses such clashes in proto3).
      for (index, field) in message.fields.enumerated() where keys[field.name] == nil { keys[field.name] = index }
      info[ObjectIdentifier(message)] = MessageInfo(
        fieldsByKey: keys, wellKnownType: WellKnownType(fullName: message.fullName))
    }
    self.info = info
  }

  /// Protobuf wire bytes of message type `typeName` (full name, no leading dot) -> canonical JSON (UTF-8).
  public func json(fromMessage bytes: [UInt8], type typeName: String) throws(ProtoJSONError) -> [UInt8] {
    guard let message = schema.message(typeName) else { throw ProtoJSONError("unknown message type \(typeName)") }
    var encoder = CanonicalJSONEncoder(codec: self, capacity: bytes.count * 2 + 16)
    try encoder.writeMessage(message, bytes: bytes, range: 0..<bytes.count)
    return encoder.json.bytes
  }

  /// Canonical JSON -> protobuf wire bytes. Errors name the field path precisely, e.g.
  /// "messages[0].role: expected a string".
  public func message(fromJSON json: [UInt8], type typeName: String) throws(ProtoJSONError) -> [UInt8] {
    guard let message = schema.message(typeName) else { throw ProtoJSONError("unknown message type \(typeName)") }
    // Checked once for the whole text, so every string read from it is valid UTF-8.
    if let offset = UTF8Validation.firstInvalidOffset(json) {
      throw ProtoJSONError("invalid UTF-8 at byte \(offset)")
    }
    var decoder = CanonicalJSONDecoder(codec: self, json: json)
    var writer = ProtoWireWriter(capacity: json.count)
    try decoder.readMessage(message, into: &writer)
    try decoder.expectEnd()
    return writer.bytes
  }

  func info(of message: MessageSchema) -> MessageInfo {
    // Every message of the schema has its entry; a fallback keeps a foreign one from crashing.
    info[ObjectIdentifier(message)] ?? MessageInfo(fieldsByKey: [:], wellKnownType: nil)
  }
}
