/// The well-known types whose JSON is not an object of their fields, read back: the strings of
/// Timestamp, Duration and FieldMask, wrappers' bare values, any JSON for Struct/Value/ListValue,
/// and Any's object with its "@type".
extension CanonicalJSONDecoder {
  mutating func readWellKnown(_ kind: WellKnownType, _ message: MessageSchema, into writer: inout ProtoWireWriter)
    throws(ProtoJSONError)
  {
    switch kind {
    case .timestamp:
      let text = try readText(orFail: "expected an RFC 3339 timestamp string")
      guard let (seconds, nanos) = TimestampJSON.parse(text) else {
        throw path.error("invalid google.protobuf.Timestamp \"\(String(decoding: text, as: UTF8.self))\"")
      }
      writeSecondsAndNanos(seconds, nanos, into: &writer)
    case .duration:
      let text = try readText(orFail: "expected a duration string such as \"1.5s\"")
      guard let (seconds, nanos) = DurationJSON.parse(text) else {
        throw path.error("invalid google.protobuf.Duration \"\(String(decoding: text, as: UTF8.self))\"")
      }
      writeSecondsAndNanos(seconds, nanos, into: &writer)
    case .fieldMask:
      let text = try readText(orFail: "expected a string of comma-separated paths")
      if text.isEmpty { return }
      for jsonPath in text.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
        guard let protoPath = FieldMaskJSON.protoPath(jsonPath) else {
          throw path.error("invalid google.protobuf.FieldMask path \"\(String(decoding: jsonPath, as: UTF8.self))\"")
        }
        writer.lengthDelimited(1, protoPath)
      }
    case .wrapper:
      let field = try onlyField(number: 1, of: message)
      let value = try readScalar(field)
      if !value.isZero { value.write(1, to: &writer) }
    case .structure:
      let field = try onlyField(number: 1, of: message)
      guard let entry = codec.schema.message(of: field), entry.isMapEntry else {
        throw path.error("\(message.fullName) has no map of fields")
      }
      try readMap(field, entry, into: &writer)
    case .listValue:
      try readList(try onlyField(number: 1, of: message), into: &writer)
    case .value:
      try readValue(message, into: &writer)
    case .any:
      try readAny(message, into: &writer)
    }
  }

  /// Any JSON value as a google.protobuf.Value: null, number, string, bool, Struct or ListValue.
  private mutating func readValue(_ message: MessageSchema, into writer: inout ProtoWireWriter)
    throws(ProtoJSONError)
  {
    switch try peekKind() {
    case .null:
      try readNull()
      writer.tag(1, .varint)
      writer.varint(0)
    case .number:
      let text = try readNumberText()
      guard let value = Double(String(decoding: text, as: UTF8.self)), value.isFinite else {
        throw path.error("\(String(decoding: text, as: UTF8.self)) is out of range for double")
      }
      writer.tag(2, .fixed64)
      writer.fixed64(value.bitPattern)
    case .string:
      writer.lengthDelimited(3, try readStringBytes())
    case .bool:
      writer.tag(4, .varint)
      writer.varint(try readBool() ? 1 : 0)
    case .object:
      let type = try messageType(of: try onlyField(number: 5, of: message))
      let start = writer.begin(5)
      try readMessage(type, into: &writer)
      writer.end(start)
    case .array:
      let type = try messageType(of: try onlyField(number: 6, of: message))
      let start = writer.begin(6)
      try readMessage(type, into: &writer)
      writer.end(start)
    }
  }

  /// Any: the object's "@type" names the message the other members (or, for a well-known type,
  /// its "value") make up. "@type" may come anywhere in the object, so it is found first and the
  /// object read again from its start.
  private mutating func readAny(_ message: MessageSchema, into writer: inout ProtoWireWriter)
    throws(ProtoJSONError)
  {
    guard try peekKind() == .object else { throw path.error("expected an object") }
    let start = reader.index
    var typeURL: [UInt8]? = nil
    var memberCount = 0
    try beginObject()
    while let key = try nextKey() {
      memberCount += 1
      guard key.elementsEqual("@type".utf8) else {
        try skipValue()
        continue
      }
      path.push(.field("@type"))
      guard typeURL == nil else { throw path.error("field @type is given more than once") }
      guard try peekKind() == .string else { throw path.error("expected a string") }
      typeURL = try readStringBytes()
      path.pop()
    }
    // {} is the empty Any.
    if memberCount == 0 { return }
    guard let typeURL else { throw path.error("google.protobuf.Any is missing \"@type\"") }
    let url = String(decoding: typeURL, as: UTF8.self)
    let typeName = url.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? url
    guard let inner = codec.schema.message(typeName) else {
      throw path.error("google.protobuf.Any holds \(url), which is not in the schema")
    }
    reader.rewind(to: start)
    var value = ProtoWireWriter()
    if codec.info(of: inner).wellKnownType != nil {
      var sawValue = false
      try beginObject()
      while let key = try nextKey() {
        if key.elementsEqual("@type".utf8) {
          try skipValue()
          continue
        }
        guard key.elementsEqual("value".utf8) else {
          throw path.error(
            "google.protobuf.Any holding \(typeName) has no field \"\(String(decoding: key, as: UTF8.self))\"")
        }
        path.push(.field("value"))
        guard !sawValue else { throw path.error("field value is given more than once") }
        sawValue = true
        try readMessage(inner, into: &value)
        path.pop()
      }
    } else {
      try readFields(of: inner, into: &value, skippingTypeKey: true)
    }
    writer.lengthDelimited(1, typeURL)
    if value.count > 0 { writer.lengthDelimited(2, value.bytes) }
  }

  private mutating func readText(orFail problem: String) throws(ProtoJSONError) -> [UInt8] {
    guard try peekKind() == .string else { throw path.error(problem) }
    return try readStringBytes()
  }

  private func writeSecondsAndNanos(_ seconds: Int64, _ nanos: Int32, into writer: inout ProtoWireWriter) {
    if seconds != 0 {
      writer.tag(1, .varint)
      writer.varint(UInt64(bitPattern: seconds))
    }
    if nanos != 0 {
      writer.tag(2, .varint)
      writer.varint(UInt64(bitPattern: Int64(nanos)))
    }
  }

  private func onlyField(number: Int32, of message: MessageSchema) throws(ProtoJSONError) -> MessageSchema.Field {
    guard let index = message.fieldIndex(number: number) else {
      throw path.error("\(message.fullName) has no field \(number)")
    }
    return message.fields[index]
  }
}
