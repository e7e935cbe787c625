/// Protobuf wire bytes to canonical proto3 JSON, following the schema: json_names as keys,
/// fields holding their default omitted unless they track presence, 64-bit integers as strings,
/// enums by name. Unknown fields are dropped, as protobuf's printers drop them.
struct CanonicalJSONEncoder {
  let codec: CanonicalJSON
  var json: JSONWriter
  var path = FieldPath()

  init(codec: CanonicalJSON, capacity: Int) {
    self.codec = codec
    json = JSONWriter(capacity: capacity)
  }

  /// Writes the message in `bytes[range]` as one JSON value.
  mutating func writeMessage(_ message: MessageSchema, bytes: [UInt8], range: Range<Int>) throws(ProtoJSONError) {
    if let wellKnown = codec.info(of: message).wellKnownType {
      try writeWellKnown(wellKnown, message, bytes: bytes, range: range)
      return
    }
    try beginObject()
    try writeFields(of: message, bytes: bytes, range: range)
    json.endObject()
  }

  /// The message's fields as members of the object being written.
  mutating func writeFields(of message: MessageSchema, bytes: [UInt8], range: Range<Int>) throws(ProtoJSONError) {
    let occurrences = try self.occurrences(of: message, bytes: bytes, range: range)
    // Of a oneof's members on the wire, the last one wins, as protobuf's merge rules say.
    var winners = [Int].filled(with: -1, count: message.oneofs.count)
    for (oneofIndex, oneof) in message.oneofs.enumerated() {
      var latest = -1
      for member in oneof.fieldIndices {
        let field = message.fields[member]
        if let last = occurrences[member].last(where: { accepts(field, $0) }), last.position > latest {
          latest = last.position
          winners[oneofIndex] = member
        }
      }
    }
    for group in occurrences.groups {
      let index = group.fieldIndex
      let found = occurrences[group]
      let field = message.fields[index]
      if let oneof = field.oneofIndex, winners[oneof] != index { continue }
      path.push(.field(field.jsonName))
      if field.isRepeated {
        try writeRepeated(field, found, bytes: bytes)
      } else {
        try writeSingular(field, found, bytes: bytes)
      }
      path.pop()
    }
  }

  private mutating func writeSingular(
    _ field: MessageSchema.Field, _ found: ArraySlice<WireField>, bytes: [UInt8]
  ) throws(ProtoJSONError) {
    if field.type == .message {
      let parts = found.filter { $0.wireType == .lengthDelimited }
      guard let first = parts.first else { return }
      let type = try messageType(of: field)
      json.key(field.jsonName)
      if parts.count == 1 {
        try writeMessage(type, bytes: bytes, range: first.range)
      } else {
        // A message field that occurs more than once is the merge of its occurrences, which for
        // wire bytes is their concatenation.
        var merged: [UInt8] = []
        for part in parts { merged.append(contentsOf: bytes[part.range]) }
        try writeMessage(type, bytes: merged, range: 0..<merged.count)
      }
      return
    }
    guard let last = found.last(where: { accepts(field, $0) }) else { return }
    if !field.hasPresence && isDefault(field.type, last) { return }
    json.key(field.jsonName)
    try writeScalar(field, scalar: last.scalar, range: last.range, bytes: bytes)
  }

  private mutating func writeRepeated(
    _ field: MessageSchema.Field, _ found: ArraySlice<WireField>, bytes: [UInt8]
  ) throws(ProtoJSONError) {
    if field.type == .message, let entry = codec.schema.message(of: field), entry.isMapEntry {
      guard found.contains(where: { $0.wireType == .lengthDelimited }) else { return }
      json.key(field.jsonName)
      try writeMap(field, entry, found, bytes: bytes)
      return
    }
    let elements = try self.elements(of: field, found, bytes: bytes)
    if elements.isEmpty { return }
    json.key(field.jsonName)
    try writeArray(field, elements, bytes: bytes)
  }

  /// A repeated field's elements in order, packed runs unpacked: each as its scalar or its range.
  func elements(of field: MessageSchema.Field, _ found: ArraySlice<WireField>, bytes: [UInt8]) throws(ProtoJSONError)
    -> [WireField]
  {
    guard field.isPackable else { return found.filter { $0.wireType == .lengthDelimited } }
    var elements: [WireField] = []
    let wireType = field.type.wireType
    for occurrence in found {
      if occurrence.wireType == wireType {
        elements.append(occurrence)
        continue
      }
      guard occurrence.wireType == .lengthDelimited else { continue }
      var packed = ProtoWireReader(bytes, range: occurrence.range)
      do {
        while !packed.isAtEnd {
          let scalar: UInt64
          switch wireType {
          case .fixed64: scalar = try packed.readFixed64()
          case .fixed32: scalar = UInt64(try packed.readFixed32())
          default: scalar = try packed.readVarint()
          }
          elements.append(WireField(number: field.number, wireType: wireType, scalar: scalar, range: 0..<0))
        }
      } catch {
        throw path.error("malformed packed field: \(error.reason)")
      }
    }
    return elements
  }

  /// The elements as a JSON array.
  mutating func writeArray(_ field: MessageSchema.Field, _ elements: [WireField], bytes: [UInt8])
    throws(ProtoJSONError)
  {
    try beginArray()
    let elementType = field.type == .message ? try messageType(of: field) : nil
    for (index, element) in elements.enumerated() {
      path.push(.index(index))
      if let elementType {
        try writeMessage(elementType, bytes: bytes, range: element.range)
      } else {
        try writeScalar(field, scalar: element.scalar, range: element.range, bytes: bytes)
      }
      path.pop()
    }
    json.endArray()
  }

  /// A map field's entries as a JSON object; a key that occurs twice keeps its last value.
  mutating func writeMap(
    _ field: MessageSchema.Field, _ entry: MessageSchema, _ found: ArraySlice<WireField>, bytes: [UInt8]
  ) throws(ProtoJSONError) {
    guard let keyIndex = entry.fieldIndex(number: 1), let valueIndex = entry.fieldIndex(number: 2) else {
      throw path.error("\(entry.fullName) is not a map entry with a key and a value")
    }
    let keyField = entry.fields[keyIndex]
    let valueField = entry.fields[valueIndex]
    var keys: [String] = []
    var values: [WireField?] = []
    var positions: [String: Int] = [:]
    for occurrence in found where occurrence.wireType == .lengthDelimited {
      var reader = ProtoWireReader(bytes, range: occurrence.range)
      var key: WireField? = nil
      var value: WireField? = nil
      do {
        while let part = try reader.next() {
          if part.number == 1 && accepts(keyField, part) { key = part }
          if part.number == 2 && accepts(valueField, part) { value = part }
        }
      } catch {
        throw path.error("malformed \(entry.fullName): \(error.reason)")
      }
      let text = try keyText(keyField, key, bytes: bytes)
      if let position = positions[text] {
        values[position] = value
      } else {
        positions[text] = keys.count
        keys.append(text)
        values.append(value)
      }
    }
    try beginObject()
    let valueType = valueField.type == .message ? try messageType(of: valueField) : nil
    for (key, value) in zip(keys, values) {
      path.push(.key(key))
      json.key(key)
      // An entry without its value holds the value's default.
      if let valueType {
        try writeMessage(valueType, bytes: bytes, range: value?.range ?? 0..<0)
      } else {
        try writeScalar(valueField, scalar: value?.scalar ?? 0, range: value?.range ?? 0..<0, bytes: bytes)
      }
      path.pop()
    }
    json.endObject()
  }

  /// A map key as JSON spells it: strings as they are, integers in decimal, bools as words.
  private func keyText(_ field: MessageSchema.Field, _ key: WireField?, bytes: [UInt8]) throws(ProtoJSONError)
    -> String
  {
    let scalar = key?.scalar ?? 0
    switch field.type {
    case .string:
      let range = key?.range ?? 0..<0
      guard UTF8Validation.isValid(bytes[range]) else { throw path.error("map key is not valid UTF-8") }
      return String(decoding: bytes[range], as: UTF8.self)
    case .bool:
      return scalar != 0 ? "true" : "false"
    default:
      return Self.integerText(field.type, scalar)
    }
  }

  /// Whether an occurrence has the wire type its field's type is written with (or, for repeated
  /// scalars, the packed form). Others are unknown fields to protobuf's parsers, and skipped.
  func accepts(_ field: MessageSchema.Field, _ occurrence: WireField) -> Bool {
    occurrence.wireType == field.type.wireType
      || (field.isRepeated && field.isPackable && occurrence.wireType == .lengthDelimited)
  }

  func occurrences(of message: MessageSchema, bytes: [UInt8], range: Range<Int>) throws(ProtoJSONError)
    -> FieldOccurrences
  {
    do {
      return try FieldOccurrences(bytes: bytes, range: range, of: message)
    } catch {
      throw path.error("malformed \(message.fullName): \(error.reason)")
    }
  }

  func messageType(of field: MessageSchema.Field) throws(ProtoJSONError) -> MessageSchema {
    guard let type = codec.schema.message(of: field) else { throw path.error("unknown message type \(field.typeName)") }
    return type
  }

  mutating func beginObject() throws(ProtoJSONError) {
    try checkDepth()
    json.beginObject()
  }

  mutating func beginArray() throws(ProtoJSONError) {
    try checkDepth()
    json.beginArray()
  }

  private func checkDepth() throws(ProtoJSONError) {
    guard json.depth < CanonicalJSON.maximumDepth else {
      throw path.error("nested deeper than \(CanonicalJSON.maximumDepth)")
    }
  }
}
