/// Canonical proto3 JSON to protobuf wire bytes, following the schema. Strict where vLLM's
/// translation is lenient: an unknown key, a value of the wrong kind, an integer out of range or
/// a second member of a oneof is an error naming its path, not a value dropped or repaired.
struct CanonicalJSONDecoder {
  let codec: CanonicalJSON
  var reader: JSONReader
  var path = FieldPath()
  /// Objects and arrays open, for `CanonicalJSON.maximumDepth`.
  var depth = 0

  init(codec: CanonicalJSON, json: [UInt8]) {
    self.codec = codec
    reader = JSONReader(json)
  }

  mutating func expectEnd() throws(ProtoJSONError) {
    guard reader.isAtEnd else { throw ProtoJSONError("unexpected text after the JSON value at byte \(reader.index)") }
  }

  /// Reads the next JSON value as the body of `message`.
  mutating func readMessage(_ message: MessageSchema, into writer: inout ProtoWireWriter) throws(ProtoJSONError) {
    if let wellKnown = codec.info(of: message).wellKnownType {
      try readWellKnown(wellKnown, message, into: &writer)
      return
    }
    try readFields(of: message, into: &writer, skippingTypeKey: false)
  }

  /// A JSON object's members, each into its field. `skippingTypeKey`: the object is an Any's,
  /// whose "@type" was read already.
  mutating func readFields(of message: MessageSchema, into writer: inout ProtoWireWriter, skippingTypeKey: Bool)
    throws(ProtoJSONError)
  {
    guard try peekKind() == .object else { throw path.error("expected an object") }
    let keys = codec.info(of: message).fieldsByKey
    // A field given twice (say as "maxTokens" and "max_tokens") or two members of one oneof
    // would leave which value counts to the order of keys: refused, as protobuf's parsers do.
    var seen = [Bool].filled(with: false, count: message.fields.count)
    var oneofMembers = [Int].filled(with: -1, count: message.oneofs.count)
    try beginObject()
    while let keyBytes = try nextKey() {
      let key = String(decoding: keyBytes, as: UTF8.self)
      if skippingTypeKey && key == "@type" {
        try skipValue()
        continue
      }
      guard let index = keys[key] else { throw path.error("\(message.fullName) has no field \"\(key)\"") }
      let field = message.fields[index]
      path.push(.field(key))
      guard !seen[index] else { throw path.error("field \(field.name) is given more than once") }
      seen[index] = true
      // null stands for the default, except where it is a value of its own: a Value's null_value.
      if try peekKind() == .null && !isValue(field) {
        try readNull()
        if field.type == .enumeration && field.typeName == WellKnownType.nullValueName && field.hasPresence {
          writer.tag(field.number, .varint)
          writer.varint(0)
        }
        path.pop()
        continue
      }
      if let oneof = field.oneofIndex {
        let other = oneofMembers[oneof]
        guard other < 0 else {
          throw path.error(
            "oneof \(message.oneofs[oneof].name) is already set by \(message.fields[other].jsonName)")
        }
        oneofMembers[oneof] = index
      }
      try readField(field, into: &writer)
      path.pop()
    }
  }

  private mutating func readField(_ field: MessageSchema.Field, into writer: inout ProtoWireWriter)
    throws(ProtoJSONError)
  {
    if field.isRepeated {
      if field.type == .message, let entry = codec.schema.message(of: field), entry.isMapEntry {
        try readMap(field, entry, into: &writer)
      } else {
        try readList(field, into: &writer)
      }
      return
    }
    switch field.type {
    case .message:
      let type = try messageType(of: field)
      let start = writer.begin(field.number)
      try readMessage(type, into: &writer)
      writer.end(start)
    case .group:
      throw path.error("groups are not supported")
    default:
      let value = try readScalar(field)
      // proto3 writes no default for a field without presence; one with presence is set.
      if field.hasPresence || !value.isZero { value.write(field.number, to: &writer) }
    }
  }

  /// A JSON array into a repeated field: scalars as one packed run, the rest one record each.
  mutating func readList(_ field: MessageSchema.Field, into writer: inout ProtoWireWriter) throws(ProtoJSONError) {
    guard try peekKind() == .array else { throw path.error("expected an array") }
    let elementType = field.type == .message ? try messageType(of: field) : nil
    let mark = writer.count
    let packedStart = field.isPackable ? writer.begin(field.number) : 0
    var index = 0
    try beginArray()
    while try nextElement() {
      path.push(.index(index))
      if try peekKind() == .null && !(elementType.map(isValue) ?? false) {
        throw path.error("null is not allowed in a list")
      }
      if let elementType {
        let start = writer.begin(field.number)
        try readMessage(elementType, into: &writer)
        writer.end(start)
      } else if field.isPackable {
        try readScalar(field).writeBare(to: &writer)
      } else {
        try readScalar(field).write(field.number, to: &writer)
      }
      path.pop()
      index += 1
    }
    if field.isPackable {
      // An empty list is no field at all.
      if index == 0 {
        writer.truncate(to: mark)
      } else {
        writer.end(packedStart)
      }
    }
  }

  /// A JSON object into a map field, one entry per member; keys are strings in JSON whatever the
  /// key type.
  mutating func readMap(_ field: MessageSchema.Field, _ entry: MessageSchema, into writer: inout ProtoWireWriter)
    throws(ProtoJSONError)
  {
    guard try peekKind() == .object else { throw path.error("expected an object") }
    guard let keyIndex = entry.fieldIndex(number: 1), let valueIndex = entry.fieldIndex(number: 2) else {
      throw path.error("\(entry.fullName) is not a map entry with a key and a value")
    }
    let keyField = entry.fields[keyIndex]
    let valueField = entry.fields[valueIndex]
    let valueType = valueField.type == .message ? try messageType(of: valueField) : nil
    var keys = Set<String>()
    try beginObject()
    while let keyBytes = try nextKey() {
      let key = String(decoding: keyBytes, as: UTF8.self)
      path.push(.key(key))
      guard keys.insert(key).inserted else { throw path.error("key is given more than once") }
      let start = writer.begin(field.number)
      try writeMapKey(keyField, keyBytes, into: &writer)
      if try peekKind() == .null && !(valueType.map(isValue) ?? false) {
        throw path.error("null is not allowed as a map value")
      }
      if let valueType {
        let value = writer.begin(2)
        try readMessage(valueType, into: &writer)
        writer.end(value)
      } else {
        try readScalar(valueField).write(2, to: &writer)
      }
      writer.end(start)
      path.pop()
    }
  }

  private func writeMapKey(_ field: MessageSchema.Field, _ key: [UInt8], into writer: inout ProtoWireWriter)
    throws(ProtoJSONError)
  {
    switch field.type {
    case .string:
      writer.lengthDelimited(1, key)
    case .bool:
      guard key.elementsEqual("true".utf8) || key.elementsEqual("false".utf8) else {
        throw path.error("map key must be \"true\" or \"false\"")
      }
      writer.tag(1, .varint)
      writer.varint(key.count == 4 ? 1 : 0)
    default:
      guard CanonicalScalars.isNumber(key) else { throw path.error("map key must be an integer") }
      try integerValue(key, field.type).write(1, to: &writer)
    }
  }

  func isValue(_ field: MessageSchema.Field) -> Bool {
    field.type == .message && !field.isRepeated && field.typeName == "google.protobuf.Value"
  }

  func isValue(_ message: MessageSchema) -> Bool {
    codec.info(of: message).wellKnownType == .value
  }

  func messageType(of field: MessageSchema.Field) throws(ProtoJSONError) -> MessageSchema {
    guard let type = codec.schema.message(of: field) else { throw path.error("unknown message type \(field.typeName)") }
    return type
  }
}
