/// Serialized protobuf to vLLM's JSON, following the schema and the API's conventions
/// (proto/vllmgateway/v1/common.proto). Used for requests: what the client set is what vLLM gets.
public struct ProtoToJSON: Sendable {
  public let schema: Schema
  /// Whether a message whose fields come in schema order is written in one pass as it is read;
  /// the tests turn it off to hold that path to the general one.
  let writesInOnePass: Bool

  public init(schema: Schema) {
    self.init(schema: schema, writesInOnePass: true)
  }

  init(schema: Schema, writesInOnePass: Bool) {
    self.schema = schema
    self.writesInOnePass = writesInOnePass
  }

  /// The JSON object for a message of type `typeName`. `overrides` replace (or add) top-level
  /// keys after the message's own, such as `"stream": true`.
  public func json(
    from bytes: [UInt8], typeName: String, overrides: [(key: String, json: String)] = []
  ) throws -> [UInt8] {
    guard let message = schema.message(typeName) else { throw ProtoJSONError("unknown message type \(typeName)") }
    return try json(from: bytes, message: message, overrides: overrides)
  }

  /// The same for a message type already looked up in this converter's schema. With `shapes`,
  /// the shape its kind's requests share writes it when it fits (see `RequestTemplate`), and a
  /// request that does not fit may be learnt from.
  public func json(
    from bytes: [UInt8], message: MessageSchema, overrides: [(key: String, json: String)] = [],
    shapes: RequestShapes? = nil
  ) throws -> [UInt8] {
    var writer = JSONWriter(capacity: bytes.count * 2 + 64)
    writer.beginObject()
    let skipping = overrides.isEmpty ? [] : overrides.map(\.key)
    if let shapes {
      try writeMembers(of: message, bytes: bytes, to: &writer, skipping: skipping, shapes: shapes)
    } else {
      try writeMembers(of: message, bytes: bytes, range: 0..<bytes.count, to: &writer, skipping: skipping)
    }
    for (key, value) in overrides {
      writer.key(key)
      writer.raw(value.utf8)
    }
    writer.endObject()
    return writer.bytes
  }

  /// A top-level message's fields, by `shapes`' template when the message fits it.
  private func writeMembers(
    of message: MessageSchema, bytes: [UInt8], to writer: inout JSONWriter, skipping: [String], shapes: RequestShapes
  ) throws {
    let checkpoint = writer.checkpoint
    let start = writer.bytes.count
    if let template = shapes.template, template.skipping == skipping {
      if template.write(bytes, 0..<bytes.count, to: &writer) { return }
      writer.rollBack(to: checkpoint)
    }
    try writeMembers(of: message, bytes: bytes, range: 0..<bytes.count, to: &writer, skipping: skipping)
    guard shapes.shouldLearn(),
      let learnt = RequestTemplateLearner.learn(bytes, as: message, in: schema, skipping: skipping)
    else { return }
    // Kept only when it writes this request as the general way just did: anything the learner
    // misjudged stays out.
    var check = JSONWriter(capacity: writer.bytes.count)
    if learnt.write(bytes, 0..<bytes.count, to: &check), check.bytes.elementsEqual(writer.bytes[start...]) {
      shapes.learnt(learnt)
    }
  }

  /// Writes a message as a JSON value: an object, or an array for a list.
  func writeValue(of message: MessageSchema, bytes: [UInt8], range: Range<Int>, to writer: inout JSONWriter) throws {
    try WellKnownJSON.checkDepth(of: writer)
    if message.isWellKnown {
      try WellKnownJSON.writeJSON(of: message.fullName, bytes: bytes, range: range, to: &writer)
      return
    }
    if message.listField != nil {
      let occurrences = try collect(bytes: bytes, range: range, of: message)
      try writeRepeated(message.slots[0], of: message, occurrences[0], bytes: bytes, to: &writer)
      return
    }
    writer.beginObject()
    try writeMembers(of: message, bytes: bytes, range: range, to: &writer, skipping: [])
    writer.endObject()
  }

  /// A message's fields as members of the object being written.
  private func writeMembers(
    of message: MessageSchema, bytes: [UInt8], range: Range<Int>, to writer: inout JSONWriter, skipping: [String]
  ) throws {
    if writesInOnePass && message.variantOneof == nil {
      let checkpoint = writer.checkpoint
      // A throw here goes the general way too, which throws the error it meets first in schema
      // order: the one this pass met first in wire order may be another.
      let written =
        (try? writeMembersInWireOrder(of: message, bytes: bytes, range: range, to: &writer, skipping: skipping))
        ?? false
      if written { return }
      writer.rollBack(to: checkpoint)
    }
    let occurrences = try collect(bytes: bytes, range: range, of: message)
    // A variant writes its "type" and its member's fields; an `other` object stands for itself.
    if let variant = message.variantOneof {
      if let other = message.otherField, let index = message.fieldIndex(number: other.number),
        let last = occurrences[index].last
      {
        try WellKnownJSON.writeStructMembers(bytes: bytes, range: last.range, to: &writer)
        return
      }
      if let memberIndex = variant.fieldIndices.last(where: { !occurrences[$0].isEmpty }),
        let member = schema.message(of: message.fields[memberIndex]),
        let last = occurrences[memberIndex].last
      {
        writer.key("type")
        writer.string(message.fields[memberIndex].name)
        try writeMembers(of: member, bytes: bytes, range: last.range, to: &writer, skipping: ["type"])
      }
      return
    }
    // Oneofs already written, as bits (a Set would allocate for every message with one); a
    // message with more than 64 oneofs uses a set for the rest.
    var writtenOneofs: UInt64 = 0
    var writtenLaterOneofs = Set<Int>()
    for group in occurrences.groups {
      let index = group.fieldIndex
      let found = occurrences[group]
      let field = message.fields[index]
      if skipping.contains(field.name) { continue }
      if let oneof = field.oneofIndex {
        // Several members on the wire: the last one set wins.
        if oneof < 64 {
          guard writtenOneofs & (1 << UInt64(oneof)) == 0 else { continue }
          writtenOneofs |= 1 << UInt64(oneof)
        } else {
          guard writtenLaterOneofs.insert(oneof).inserted else { continue }
        }
        let members = message.oneofs[oneof].fieldIndices
        guard let winner = members.max(by: { lastPosition(occurrences[$0]) < lastPosition(occurrences[$1]) }) else {
          continue
        }
        if skipping.contains(message.oneofs[oneof].name) { continue }
        writer.key(message.oneofs[oneof].quotedName)
        try writeSingle(message.slots[winner], of: message, occurrences[winner].last!, bytes: bytes, to: &writer)
        continue
      }
      if message.fieldsMergedIntoObject[index] {
        for occurrence in found {
          try WellKnownJSON.writeStructMembers(bytes: bytes, range: occurrence.range, to: &writer)
        }
        continue
      }
      writer.key(field.quotedName)
      if field.isRepeated {
        try writeRepeated(message.slots[index], of: message, found, bytes: bytes, to: &writer)
      } else {
        try writeSingle(message.slots[index], of: message, found.last!, bytes: bytes, to: &writer)
      }
    }
  }

  /// Whether `writeMembers` writes the message's own fields in one pass (tests).
  func takesOnePass(_ message: MessageSchema, bytes: [UInt8], range: Range<Int>) -> Bool {
    var writer = JSONWriter()
    writer.beginObject()
    return (try? writeMembersInWireOrder(of: message, bytes: bytes, range: range, to: &writer, skipping: [])) ?? false
  }

  /// `writeMembers` in one pass, each member written as its field is read, while the wire holds
  /// the message's fields as `writeMembers` would write them: each field once, in schema order, a
  /// repeated field's occurrences together, one member of each oneof, no map and nothing merged
  /// into the object. Serializers write requests so; then no occurrences are gathered into arrays
  /// first (two allocations a message, about 1,400 instructions for a chat message), and the
  /// fields are read once (checking the order in a pass of its own cost ~680 instructions a chat
  /// request, callgrind). False at the first field that is not so, or bytes that are not a
  /// message, with part of the members written: the caller rolls the writer back and goes the
  /// general way, which writes (or throws) what it must.
  private func writeMembersInWireOrder(
    of message: MessageSchema, bytes: [UInt8], range: Range<Int>, to writer: inout JSONWriter, skipping: [String]
  ) throws -> Bool {
    var reader = ProtoWireReader(bytes, range: range)
    var lastIndex = -1
    var isArrayOpen = false
    var isSkipped = false
    var seenOneofs: UInt64 = 0
    while true {
      let field: WireField
      do {
        guard let next = try reader.next() else { break }
        field = next
      } catch {
        return false
      }
      guard let index = message.fieldIndex(number: field.number) else { continue }
      // The field as plain values: a `Field` is a class, retained and released for each field.
      let slot = message.slots[index]
      if index == lastIndex {
        // Another occurrence of the repeated field being written.
        guard slot.isRepeated else { return false }
        if !isSkipped { try writeElement(of: slot, of: message, field, bytes: bytes, to: &writer) }
        continue
      }
      guard index > lastIndex, !message.fieldsMergedIntoObject[index], !slot.isMap else { return false }
      if slot.oneofIndex >= 0 {
        guard slot.oneofIndex < 64, seenOneofs & (1 << UInt64(slot.oneofIndex)) == 0 else { return false }
        seenOneofs |= 1 << UInt64(slot.oneofIndex)
      }
      if isArrayOpen {
        writer.endArray()
        isArrayOpen = false
      }
      lastIndex = index
      isSkipped = !skipping.isEmpty && skipping.contains(message.fields[index].name)
      if isSkipped { continue }
      if slot.oneofIndex >= 0 && !skipping.isEmpty && skipping.contains(message.oneofs[slot.oneofIndex].name) {
        continue
      }
      writer.key(message.memberKeys[index])
      if slot.isRepeated {
        writer.beginArray()
        isArrayOpen = true
        try writeElement(of: slot, of: message, field, bytes: bytes, to: &writer)
      } else {
        try writeSingle(slot, of: message, field, bytes: bytes, to: &writer)
      }
    }
    if isArrayOpen { writer.endArray() }
    return true
  }

  private func lastPosition(_ fields: ArraySlice<WireField>) -> Int {
    fields.last?.position ?? -1
  }

  /// Each field's occurrences, in wire order.
  private func collect(bytes: [UInt8], range: Range<Int>, of message: MessageSchema) throws -> FieldOccurrences {
    do {
      return try FieldOccurrences(bytes: bytes, range: range, of: message)
    } catch {
      throw ProtoJSONError("malformed \(message.fullName): \(error.reason)")
    }
  }

  /// A repeated field (`slot` of `message`).
  private func writeRepeated(
    _ slot: MessageSchema.Slot, of message: MessageSchema, _ occurrences: ArraySlice<WireField>, bytes: [UInt8],
    to writer: inout JSONWriter
  ) throws {
    if slot.type == .message, let entry = schema.message(of: slot), entry.isMapEntry {
      writer.beginObject()
      for occurrence in occurrences {
        let parts = try collect(bytes: bytes, range: occurrence.range, of: entry)
        guard let keyIndex = entry.fieldIndex(number: 1), let valueIndex = entry.fieldIndex(number: 2) else { continue }
        if let key = parts[keyIndex].last {
          writer.key(bytes: key.wireType == .lengthDelimited ? Array(bytes[key.range]) : Array(String(key.scalar).utf8))
        } else {
          writer.key("")
        }
        if let value = parts[valueIndex].last {
          try writeSingle(entry.slots[valueIndex], of: entry, value, bytes: bytes, to: &writer)
        } else {
          writer.null()
        }
      }
      writer.endObject()
      return
    }
    writer.beginArray()
    for occurrence in occurrences {
      try writeElement(of: slot, of: message, occurrence, bytes: bytes, to: &writer)
    }
    writer.endArray()
  }

  /// The array elements one occurrence of a repeated field holds: one, or a packed run of scalars.
  private func writeElement(
    of slot: MessageSchema.Slot, of message: MessageSchema, _ occurrence: WireField, bytes: [UInt8],
    to writer: inout JSONWriter
  ) throws {
    guard slot.isPackable && occurrence.wireType == .lengthDelimited else {
      try writeSingle(slot, of: message, occurrence, bytes: bytes, to: &writer)
      return
    }
    var packed = ProtoWireReader(bytes, range: occurrence.range)
    do {
      while !packed.isAtEnd {
        let scalar: UInt64
        switch slot.type {
        case .double, .fixed64, .sfixed64: scalar = try packed.readFixed64()
        case .float, .fixed32, .sfixed32: scalar = UInt64(try packed.readFixed32())
        default: scalar = try packed.readVarint()
        }
        Self.writeScalar(slot.type, scalar, to: &writer)
      }
    } catch {
      throw ProtoJSONError("malformed packed \(message.fields[slot.index].name): \(error.reason)")
    }
  }

  private func writeSingle(
    _ slot: MessageSchema.Slot, of message: MessageSchema, _ occurrence: WireField, bytes: [UInt8],
    to writer: inout JSONWriter
  ) throws {
    switch slot.type {
    case .string:
      writer.string(utf8: bytes, occurrence.range)
    case .bytes:
      writer.string(Base64Standard.encode(bytes[occurrence.range]))
    case .message:
      guard let type = schema.message(of: slot) else {
        throw ProtoJSONError("unknown type \(message.fields[slot.index].typeName)")
      }
      try writeValue(of: type, bytes: bytes, range: occurrence.range, to: &writer)
    case .group:
      throw ProtoJSONError("groups are not supported")
    default:
      Self.writeScalar(slot.type, occurrence.scalar, to: &writer)
    }
  }

  static func writeScalar(_ type: MessageSchema.FieldType, _ scalar: UInt64, to writer: inout JSONWriter) {
    if let number = integer(type, scalar) {
      writer.integer(negative: number.negative, magnitude: number.magnitude)
      return
    }
    switch type {
    case .double: writer.double(Double(bitPattern: scalar))
    case .float: writer.double(Double(Float(bitPattern: UInt32(truncatingIfNeeded: scalar))))
    case .bool: writer.bool(scalar != 0)
    default: writer.null()
    }
  }

  /// The integer a scalar of an integer `type` (an enum's number among them) holds, by sign and
  /// magnitude; nil for the other types.
  @inline(__always)
  static func integer(_ type: MessageSchema.FieldType, _ scalar: UInt64) -> (negative: Bool, magnitude: UInt64)? {
    let signed: Int64
    switch type {
    case .int64, .sfixed64: signed = Int64(bitPattern: scalar)
    case .int32, .sfixed32, .enumeration: signed = Int64(Int32(truncatingIfNeeded: scalar))
    case .uint64, .fixed64: return (false, scalar)
    case .uint32, .fixed32: return (false, UInt64(UInt32(truncatingIfNeeded: scalar)))
    case .sint32, .sint64: signed = Int64(bitPattern: scalar >> 1) ^ -Int64(bitPattern: scalar & 1)
    default: return nil
    }
    return (signed < 0, signed.magnitude)
  }
}
