/// The well-known types whose JSON is not an object of their fields: Timestamp and Duration as
/// strings, FieldMask as a string of paths, wrappers as their bare value, Struct/Value/ListValue
/// as the JSON they hold, Any as its message's object with an "@type".
extension CanonicalJSONEncoder {
  mutating func writeWellKnown(_ kind: WellKnownType, _ message: MessageSchema, bytes: [UInt8], range: Range<Int>)
    throws(ProtoJSONError)
  {
    switch kind {
    case .timestamp:
      let (seconds, nanos) = try secondsAndNanos(message, bytes: bytes, range: range)
      guard let text = TimestampJSON.format(seconds: seconds, nanos: nanos) else {
        throw path.error("google.protobuf.Timestamp out of range (seconds \(seconds), nanos \(nanos))")
      }
      json.string(text)
    case .duration:
      let (seconds, nanos) = try secondsAndNanos(message, bytes: bytes, range: range)
      guard let text = DurationJSON.format(seconds: seconds, nanos: nanos) else {
        throw path.error("google.protobuf.Duration out of range (seconds \(seconds), nanos \(nanos))")
      }
      json.string(text)
    case .fieldMask:
      try writeFieldMask(message, bytes: bytes, range: range)
    case .wrapper:
      let (field, found) = try onlyField(number: 1, of: message, bytes: bytes, range: range)
      let last = found.last { accepts(field, $0) }
      try writeScalar(field, scalar: last?.scalar ?? 0, range: last?.range ?? 0..<0, bytes: bytes)
    case .structure:
      let (field, found) = try onlyField(number: 1, of: message, bytes: bytes, range: range)
      guard let entry = codec.schema.message(of: field), entry.isMapEntry else {
        throw path.error("\(message.fullName) has no map of fields")
      }
      try writeMap(field, entry, found, bytes: bytes)
    case .listValue:
      let (field, found) = try onlyField(number: 1, of: message, bytes: bytes, range: range)
      try writeArray(field, try elements(of: field, found, bytes: bytes), bytes: bytes)
    case .value:
      try writeValue(message, bytes: bytes, range: range)
    case .any:
      try writeAny(message, bytes: bytes, range: range)
    }
  }

  /// Value's `kind` oneof: the member last on the wire; none set prints as null, as protobuf's
  /// printers do.
  private mutating func writeValue(_ message: MessageSchema, bytes: [UInt8], range: Range<Int>)
    throws(ProtoJSONError)
  {
    let occurrences = try self.occurrences(of: message, bytes: bytes, range: range)
    var chosen: (field: MessageSchema.Field, occurrence: WireField)? = nil
    for (index, field) in message.fields.enumerated() {
      guard let last = occurrences[index].last(where: { accepts(field, $0) }) else { continue }
      if chosen == nil || last.position > chosen!.occurrence.position { chosen = (field, last) }
    }
    guard let (field, occurrence) = chosen else {
      json.null()
      return
    }
    if field.type == .double, !Double(bitPattern: occurrence.scalar).isFinite {
      // JSON has no such number, and the string "NaN" would read back as a string_value.
      throw path.error("google.protobuf.Value cannot hold NaN or Infinity in JSON")
    }
    if field.type == .message {
      try writeMessage(try messageType(of: field), bytes: bytes, range: occurrence.range)
    } else {
      try writeScalar(field, scalar: occurrence.scalar, range: occurrence.range, bytes: bytes)
    }
  }

  private mutating func writeFieldMask(_ message: MessageSchema, bytes: [UInt8], range: Range<Int>)
    throws(ProtoJSONError)
  {
    let (field, found) = try onlyField(number: 1, of: message, bytes: bytes, range: range)
    var paths: [String] = []
    for occurrence in found where accepts(field, occurrence) {
      let protoPath = Array(bytes[occurrence.range])
      guard let jsonPath = FieldMaskJSON.jsonPath(protoPath) else {
        throw path.error(
          "google.protobuf.FieldMask path \"\(String(decoding: protoPath, as: UTF8.self))\" has no JSON form")
      }
      paths.append(jsonPath)
    }
    json.string(paths.joined(separator: ","))
  }

  /// Any: the packed message's JSON object with its type URL under "@type" first; a well-known
  /// type's JSON goes under "value". The type must be in the schema.
  private mutating func writeAny(_ message: MessageSchema, bytes: [UInt8], range: Range<Int>) throws(ProtoJSONError) {
    var typeURL: Range<Int>? = nil
    var value: Range<Int>? = nil
    var reader = ProtoWireReader(bytes, range: range)
    do {
      while let field = try reader.next() {
        guard field.wireType == .lengthDelimited else { continue }
        if field.number == 1 { typeURL = field.range }
        if field.number == 2 { value = field.range }
      }
    } catch {
      throw path.error("malformed google.protobuf.Any: \(error.reason)")
    }
    guard let typeURL else {
      if value == nil || value!.isEmpty {
        try beginObject()
        json.endObject()
        return
      }
      throw path.error("google.protobuf.Any has a value but no type_url")
    }
    guard UTF8Validation.isValid(bytes[typeURL]) else { throw path.error("type_url is not valid UTF-8") }
    let url = String(decoding: bytes[typeURL], as: UTF8.self)
    let typeName = url.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? url
    guard let inner = codec.schema.message(typeName) else {
      throw path.error("google.protobuf.Any holds \(url), which is not in the schema")
    }
    try beginObject()
    json.key("@type")
    json.string(url)
    if let wellKnown = codec.info(of: inner).wellKnownType {
      json.key("value")
      path.push(.field("value"))
      try writeWellKnown(wellKnown, inner, bytes: bytes, range: value ?? 0..<0)
      path.pop()
    } else {
      try writeFields(of: inner, bytes: bytes, range: value ?? 0..<0)
    }
    json.endObject()
  }

  /// Timestamp's and Duration's two fields.
  private func secondsAndNanos(_ message: MessageSchema, bytes: [UInt8], range: Range<Int>) throws(ProtoJSONError)
    -> (Int64, Int32)
  {
    var seconds: Int64 = 0
    var nanos: Int32 = 0
    var reader = ProtoWireReader(bytes, range: range)
    do {
      while let field = try reader.next() {
        guard field.wireType == .varint else { continue }
        if field.number == 1 { seconds = Int64(bitPattern: field.scalar) }
        if field.number == 2 { nanos = Int32(truncatingIfNeeded: field.scalar) }
      }
    } catch {
      throw path.error("malformed \(message.fullName): \(error.reason)")
    }
    return (seconds, nanos)
  }

  /// The field numbered `number` of a well-known type, and its occurrences in `bytes[range]`.
  private func onlyField(number: Int32, of message: MessageSchema, bytes: [UInt8], range: Range<Int>)
    throws(ProtoJSONError) -> (MessageSchema.Field, ArraySlice<WireField>)
  {
    guard let index = message.fieldIndex(number: number) else {
      throw path.error("\(message.fullName) has no field \(number)")
    }
    return (message.fields[index], try occurrences(of: message, bytes: bytes, range: range)[index])
  }
}
