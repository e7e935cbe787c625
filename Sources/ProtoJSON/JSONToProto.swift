/// vLLM's JSON to serialized protobuf, following the schema and the API's conventions
/// (proto/vllmgateway/v1/common.proto). Used for responses: every key vLLM sends lands in a typed
/// field or, when the schema does not name it or its shape is unexpected, in `extra_fields`.
public struct JSONToProto: Sendable {
  public let schema: Schema

  public init(schema: Schema) {
    self.schema = schema
  }

  /// The protobuf encoding of the JSON object `json` as a message of type `typeName`.
  public func proto(from json: [UInt8], typeName: String) throws -> [UInt8] {
    guard let message = schema.message(typeName) else { throw ProtoJSONError("unknown message type \(typeName)") }
    return try proto(from: json, message: message)
  }

  /// The same for a message type already looked up (once per call rather than per chunk).
  public func proto(from json: [UInt8], message: MessageSchema) throws -> [UInt8] {
    var output: [UInt8] = []
    output.reserveCapacity(json.count)
    try append(from: json, message: message, to: &output)
    return output
  }

  /// The same, appended to `output`: a caller that translates many messages (a stream's chunks)
  /// reuses one array instead of allocating one per message.
  public func append(from json: [UInt8], message: MessageSchema, to output: inout [UInt8]) throws {
    var reader = JSONReader(json)
    var writer = ProtoWireWriter(appendingTo: &output)
    defer { writer.finish(into: &output) }
    do {
      try writeMessage(message, from: &reader, to: &writer)
      guard reader.isAtEnd else { throw ProtoJSONError("unexpected text after the JSON value") }
    } catch let failure as JSONReader.Failure {
      throw ProtoJSONError(failure.description)
    }
  }

  /// The same for one of many replies of a kind, `shapes` holding the shape they share (see
  /// `ReplyTemplate`): written by it when the reply fits, else the general way, and learnt from
  /// now and then when it did not fit.
  public func append(from json: [UInt8], message: MessageSchema, to output: inout [UInt8], shapes: ReplyShapes)
    throws
  {
    _ = try append(from: json, message: message, to: &output, shapes: shapes, watching: 0)
  }

  /// The same, answering where the reply's top-level message field numbered `watched` was
  /// written (the index of its tag in `output`) when the template wrote the reply and the field
  /// once, so a reader of that field alone (a unary call's usage) need not walk the message to
  /// it; nil otherwise. 0 watches nothing.
  public func append(
    from json: [UInt8], message: MessageSchema, to output: inout [UInt8], shapes: ReplyShapes, watching watched: Int32
  ) throws -> Int? {
    let start = output.count
    if let template = shapes.template {
      if watched == 0 {
        if template.write(json, to: &output) { return nil }
      } else {
        var watch = TopLevelFieldWatch(number: watched)
        if template.write(json, to: &output, watch: &watch) { return watch.index }
      }
      output.removeSubrange(start...)
    }
    try append(from: json, message: message, to: &output)
    guard shapes.shouldLearn(), let learnt = ReplyTemplateLearner.learn(json, as: message, in: schema) else {
      return nil
    }
    // Kept only when it writes this reply as the general way just did: anything the learner
    // misjudged stays out.
    var check: [UInt8] = []
    check.reserveCapacity(output.count - start)
    if learnt.write(json, to: &check) && check.elementsEqual(output[start...]) { shapes.learnt(learnt) }
    return nil
  }

  /// The same for one of a stream's messages, `head` holding the leading members the stream's
  /// messages repeat (see `RepeatedHead`): copied when this message starts with them, else
  /// translated and kept for the next. A chat chunk's four leading members cost about 1,400 of
  /// its instructions to translate (translation-bench, callgrind).
  public func append(from json: [UInt8], message: MessageSchema, to output: inout [UInt8], head: inout RepeatedHead)
    throws
  {
    guard message.isPlainObject else {
      try append(from: json, message: message, to: &output)
      return
    }
    let start = output.count
    var mark = HeadMark(isWanted: false)
    do {
      var reader = JSONReader(json)
      var writer = ProtoWireWriter(appendingTo: &output)
      defer { writer.finish(into: &output) }
      if let headEnd = head.end(in: json, as: message) {
        head.noteTaken()
        writer.append(head.proto)
        reader.resumeTopLevelObject(at: headEnd)
        try writeMemberList(of: message, from: &reader, to: &writer, expected: head.expectedKey, mark: &mark)
      } else {
        guard try reader.peekKind() == .object else {
          throw ProtoJSONError("expected an object for \(message.fullName)")
        }
        mark.isWanted = head.isWanted
        try writeMembers(of: message, from: &reader, to: &writer, skippingType: false, mark: &mark)
      }
      guard reader.isAtEnd else { throw ProtoJSONError("unexpected text after the JSON value") }
    } catch let failure as JSONReader.Failure {
      throw ProtoJSONError(failure.description)
    }
    if mark.isFound { head.remember(json, output, from: start, at: mark, as: message) }
  }

  /// The same, `chunk` also holding what followed the head in the stream's last message, with
  /// the string that changes in it (see `RepeatedChunk`): written from the two when this
  /// message differs only in that string's text, else as above, and learnt from now and then
  /// while nothing is kept.
  /// `keptTried`: `appendKept` already found that the message does not fit what `chunk` keeps
  /// (a miss counted once, not twice).
  public func append(
    from json: [UInt8], message: MessageSchema, to output: inout [UInt8], head: inout RepeatedHead,
    chunk: inout RepeatedChunk, keptTried: Bool = false
  ) throws {
    if !keptTried && chunk.write(json, as: message, head: head, to: &output) {
      head.noteTaken()
      return
    }
    let start = output.count
    try append(from: json, message: message, to: &output, head: &head)
    guard chunk.shouldLearn() else { return }
    chunk.learn(json, proto: output[start...], as: message, head: head, translator: self)
  }

  /// Only the first way of `append(from:message:to:head:chunk:)`, from borrowed bytes (an
  /// event read where it lies): the message written from the kept head and chunk when it fits
  /// them; false, with nothing written, when it does not (translate a copy of it then, with
  /// `keptTried`).
  public func appendKept(
    from json: Span<UInt8>, message: MessageSchema, to output: inout [UInt8], head: inout RepeatedHead,
    chunk: inout RepeatedChunk
  ) -> Bool {
    guard chunk.write(json, as: message, head: head, to: &output) else { return false }
    head.noteTaken()
    return true
  }

  /// Writes the next JSON value as the body of `message`.
  func writeMessage(_ message: MessageSchema, from reader: inout JSONReader, to writer: inout ProtoWireWriter) throws {
    if message.isWellKnown {
      try WellKnownJSON.writeBody(of: message.fullName, from: &reader, to: &writer)
      return
    }
    if message.listField != nil {
      guard try reader.peekKind() == .array else { throw ProtoJSONError("expected an array for \(message.fullName)") }
      try writeRepeated(message.slots[0], in: message, from: &reader, to: &writer)
      return
    }
    guard try reader.peekKind() == .object else { throw ProtoJSONError("expected an object for \(message.fullName)") }
    if let variant = message.variantOneof {
      try writeVariant(message, variant, from: &reader, to: &writer)
      return
    }
    try writeMembers(of: message, from: &reader, to: &writer, skippingType: false)
  }

  /// The members of a JSON object, each into its field.
  private func writeMembers(
    of message: MessageSchema, from reader: inout JSONReader, to writer: inout ProtoWireWriter, skippingType: Bool
  ) throws {
    var noMark = HeadMark(isWanted: false)
    try writeMembers(of: message, from: &reader, to: &writer, skippingType: skippingType, mark: &noMark)
  }

  private func writeMembers(
    of message: MessageSchema, from reader: inout JSONReader, to writer: inout ProtoWireWriter, skippingType: Bool,
    mark: inout HeadMark
  ) throws {
    try reader.beginObject()
    // The key number expected next: vLLM writes keys in the order the schema declares them, so
    // the key after the last one found is compared in place first; any other key is looked up.
    // A variant's "type" key is looked for before any field, so there each key is read.
    try writeMemberList(
      of: message, from: &reader, to: &writer, expected: skippingType ? message.keyPatterns.count : 0,
      skippingType: skippingType, mark: &mark)
  }

  /// The members of an object already begun, `expected` the key order position to try first.
  private func writeMemberList(
    of message: MessageSchema, from reader: inout JSONReader, to writer: inout ProtoWireWriter, expected: Int,
    skippingType: Bool = false, mark: inout HeadMark
  ) throws {
    let objectStart = reader.index - 1
    var expected = expected
    while true {
      let memberEnd = reader.index
      let expectedHere = expected
      guard try reader.nextMember() else { break }
      let keyStart = reader.index
      var entry: Int? = nil
      // A key vLLM left out (a null it did not send, an absent role) puts the next one a few
      // places further: those are compared in place too, each ruled out by its first word unless
      // it is the one. Further than that, hashing costs less.
      var candidate = expected
      while candidate < message.keyPatterns.count && candidate &- expected < 4 {
        if reader.consumeKey(message.keyPatterns[candidate], in: message.keyPatternBytes) {
          entry = candidate
          expected = candidate &+ 1
          break
        }
        candidate &+= 1
      }
      if entry == nil {
        let key = try reader.readKey()
        if skippingType && key.isType(in: reader.bytes) {
          try reader.skipValue()
          continue
        }
        // A null is dropped whatever its key: it is not looked up. vLLM sends many keys the
        // schema orders differently or does not have, and most of those are null.
        if try reader.peekKind() == .null {
          try reader.readNull()
          continue
        }
        entry = message.keyEntry(forKey: key, in: reader.bytes)
        if !skippingType, let entry { expected = entry &+ 1 }
      }
      let kind = try reader.peekKind()
      if mark.isWanted && (kind == .object || kind == .array) {
        mark.found(
          jsonEnd: memberEnd, in: reader.bytes, protoEnd: writer.count, expectedKey: expectedHere,
          objectStart: objectStart)
      }
      if kind == .null {
        try reader.readNull()
        continue
      }
      if let entry {
        // What most values are (strings without escapes, plain integers, objects, arrays of
        // objects) is written here, as decided for the key when the schema was built, without
        // the calls of the general path; anything else is left unread for it.
        let plain = message.plainValueWrites[entry]
        switch plain.form {
        case .string where kind == .string:
          if let range = try reader.readPlainStringRange() {
            writer.lengthDelimited(plain.number, reader.bytes, range)
            continue
          }
        case .integer where kind == .number:
          if let value = reader.readPlainInteger() {
            writer.varintField(plain.number, Self.varintBits(value, as: plain.type))
            continue
          }
        case .object where kind == .object:
          let nested = schema.message(at: plain.messageIndex)
          if nested.isPlainObject {
            let start = writer.begin(plain.number)
            try writeMembers(of: nested, from: &reader, to: &writer, skippingType: false)
            writer.end(start)
            continue
          }
        case .objects where kind == .array:
          let element = schema.message(at: plain.messageIndex)
          if element.isPlainObject && !element.isMapEntry {
            try writeObjects(plain.number, element, from: &reader, to: &writer)
            continue
          }
        default:
          break
        }
      }
      var target: MessageSchema.Slot? = nil
      if let entry {
        switch message.target(ofKey: entry) {
        case .field(let index) where index != message.extraFieldsIndex:
          target = message.slots[index]
        case .oneof(let oneof):
          target = chooseMember(of: message, message.oneofs[oneof], for: kind, at: reader)
        default:
          break
        }
      }
      if let field = target, accepts(field, kind) {
        try writeField(field, in: message, from: &reader, to: &writer)
      } else if let passthrough = message.passthroughField {
        // The key again, read where it starts: only keys kept this way need their bytes.
        var keyReader = reader
        keyReader.rewind(to: keyStart)
        let keyBytes = try keyReader.nextKeyBytes()
        let start = writer.begin(passthrough.number)
        try WellKnownJSON.writeStructEntry(key: keyBytes, from: &reader, to: &writer)
        writer.end(start)
      } else {
        try reader.skipValue()
      }
    }
  }

  /// A JSON array of objects, as the occurrences of repeated message field `number`: what
  /// `writeRepeated` does for them, without its calls for each element.
  private func writeObjects(
    _ number: Int32, _ element: MessageSchema, from reader: inout JSONReader, to writer: inout ProtoWireWriter
  ) throws {
    try reader.beginArray()
    while try reader.nextElement() {
      switch try reader.peekKind() {
      case .object:
        let start = writer.begin(number)
        try writeMembers(of: element, from: &reader, to: &writer, skippingType: false)
        writer.end(start)
      case .null:
        try reader.readNull()
        // A null element keeps its place as an empty message.
        writer.lengthDelimited(number, [UInt8]())
      default:
        throw ProtoJSONError("expected an object for \(element.fullName)")
      }
    }
  }

  /// A "type"-tagged object: the member named by its type holds the other keys.
  private func writeVariant(
    _ message: MessageSchema, _ variant: MessageSchema.Oneof, from reader: inout JSONReader,
    to writer: inout ProtoWireWriter
  ) throws {
    let start = reader.index
    var type: String? = nil
    try reader.beginObject()
    while let key = try reader.nextKeySlice() {
      if key.elementsEqual("type".utf8), try reader.peekKind() == .string {
        type = try reader.readString()
      } else {
        try reader.skipValue()
      }
    }
    let memberName = type.map { String($0.map { $0 == "." ? "_" : $0 }) } ?? "message"
    let member = variant.fieldIndices.map { message.fields[$0] }.first { $0.name == memberName }
    reader.rewind(to: start)
    if let member, let memberSchema = schema.message(of: member) {
      let nested = writer.begin(member.number)
      try writeMembers(of: memberSchema, from: &reader, to: &writer, skippingType: true)
      writer.end(nested)
    } else if let other = message.otherField {
      let nested = writer.begin(other.number)
      try WellKnownJSON.writeStructBody(from: &reader, to: &writer)
      writer.end(nested)
    } else {
      try reader.skipValue()
    }
  }

  /// The member of a polymorphic oneof that fits the JSON value's kind.
  private func chooseMember(
    of message: MessageSchema, _ oneof: MessageSchema.Oneof, for kind: JSONReader.Kind, at reader: JSONReader
  ) -> MessageSchema.Slot? {
    let members = oneof.fieldIndices.map { message.slots[$0] }
    if kind == .array {
      // Several lists: decide by the first element's kind.
      var probe = reader
      var elementKind: JSONReader.Kind? = nil
      if (try? probe.beginArray()) != nil, (try? probe.nextElement()) == true { elementKind = try? probe.peekKind() }
      let lists = members.filter { schema.message(of: $0)?.listField != nil }
      if let elementKind,
        let match = lists.first(where: { list in
          guard let element = schema.message(of: list), element.listField != nil else { return false }
          return accepts(element.slots[0], elementKind, asElement: true)
        })
      {
        return match
      }
      return lists.first
    }
    return members.first { accepts($0, kind) }
  }

  /// Whether a JSON value of `kind` fits `field` (as a whole, or as one element of it).
  @inline(__always)
  private func accepts(_ field: MessageSchema.Slot, _ kind: JSONReader.Kind, asElement: Bool = false) -> Bool {
    (asElement ? field.elementKinds : field.acceptedKinds) & kind.bit != 0
  }

  private func writeField(
    _ field: MessageSchema.Slot, in message: MessageSchema, from reader: inout JSONReader,
    to writer: inout ProtoWireWriter
  ) throws {
    if field.isRepeated {
      try writeRepeated(field, in: message, from: &reader, to: &writer)
    } else {
      try writeSingle(field, in: message, from: &reader, to: &writer)
    }
  }

  private func writeRepeated(
    _ field: MessageSchema.Slot, in message: MessageSchema, from reader: inout JSONReader,
    to writer: inout ProtoWireWriter
  ) throws {
    if field.type == .message, let entry = schema.message(of: field), entry.isMapEntry {
      try writeMap(field, entry, from: &reader, to: &writer)
      return
    }
    if try reader.peekKind() == .string {
      // vLLM's base64 embeddings: little-endian float32, straight into a packed field.
      let text = try reader.readStringBytes()
      guard let raw = Base64Standard.decode(text), raw.count % 4 == 0 else {
        throw ProtoJSONError("\(message.fields[field.index].name) is not base64 float32 data")
      }
      if field.type == .float {
        writer.lengthDelimited(field.number, raw)
      } else {
        let start = writer.begin(field.number)
        for offset in stride(from: 0, to: raw.count, by: 4) {
          let bits =
            UInt32(raw[offset]) | UInt32(raw[offset + 1]) << 8 | UInt32(raw[offset + 2]) << 16
            | UInt32(raw[offset + 3]) << 24
          writer.fixed64(Double(Float(bitPattern: bits)).bitPattern)
        }
        writer.end(start)
      }
      return
    }
    try reader.beginArray()
    if field.isPackable {
      let start = writer.begin(field.number)
      while try reader.nextElement() {
        try writeBareScalar(field.type, from: &reader, to: &writer)
      }
      writer.end(start)
      return
    }
    while try reader.nextElement() {
      if try reader.peekKind() == .null {
        try reader.readNull()
        // A null element keeps its place as an empty value.
        writer.lengthDelimited(field.number, [UInt8]())
        continue
      }
      try writeSingle(field, in: message, from: &reader, to: &writer)
    }
  }

  private func writeMap(
    _ field: MessageSchema.Slot, _ entry: MessageSchema, from reader: inout JSONReader,
    to writer: inout ProtoWireWriter
  ) throws {
    guard let keyIndex = entry.fieldIndex(number: 1), let valueIndex = entry.fieldIndex(number: 2) else {
      try reader.skipValue()
      return
    }
    let keyField = entry.slots[keyIndex]
    let valueField = entry.slots[valueIndex]
    try reader.beginObject()
    while let key = try reader.nextKeySlice() {
      let start = writer.begin(field.number)
      if keyField.type == .string {
        writer.lengthDelimited(1, key)
      } else {
        writer.tag(1, .varint)
        writer.varint(UInt64(bitPattern: Int64(String(decoding: key, as: UTF8.self)) ?? 0))
      }
      if try reader.peekKind() == .null {
        try reader.readNull()
      } else if accepts(valueField, try reader.peekKind()) {
        try writeSingle(valueField, in: entry, from: &reader, to: &writer)
      } else {
        try reader.skipValue()
      }
      writer.end(start)
    }
  }

  private func writeSingle(
    _ field: MessageSchema.Slot, in owner: MessageSchema, from reader: inout JSONReader,
    to writer: inout ProtoWireWriter
  )
    throws
  {
    switch field.type {
    case .string:
      if let range = try reader.readPlainStringRange() {
        writer.lengthDelimited(field.number, reader.bytes, range)
      } else {
        writer.lengthDelimited(field.number, try reader.readStringBytes())
      }
    case .bytes:
      guard let decoded = Base64Standard.decode(try reader.readStringBytes()) else {
        throw ProtoJSONError("\(owner.fields[field.index].name) is not base64")
      }
      writer.lengthDelimited(field.number, decoded)
    case .message, .group:
      guard let message = schema.message(of: field) else {
        throw ProtoJSONError("unknown type \(owner.fields[field.index].typeName)")
      }
      let start = writer.begin(field.number)
      try writeMessage(message, from: &reader, to: &writer)
      writer.end(start)
    case .double, .fixed64, .sfixed64:
      writer.tag(field.number, .fixed64)
      try writeBareScalar(field.type, from: &reader, to: &writer)
    case .float, .fixed32, .sfixed32:
      writer.tag(field.number, .fixed32)
      try writeBareScalar(field.type, from: &reader, to: &writer)
    default:
      writer.tag(field.number, .varint)
      try writeBareScalar(field.type, from: &reader, to: &writer)
    }
  }

  /// A scalar without its tag, as a packed run holds it. JSON null becomes NaN or zero.
  private func writeBareScalar(
    _ type: MessageSchema.FieldType, from reader: inout JSONReader, to writer: inout ProtoWireWriter
  )
    throws
  {
    let kind = try reader.peekKind()
    if kind == .null { try reader.readNull() }
    switch type {
    case .double:
      writer.fixed64((kind == .null ? Double.nan : try reader.readDouble()).bitPattern)
    case .float:
      writer.fixed32(Float(kind == .null ? Double.nan : try reader.readDouble()).bitPattern)
    case .bool:
      writer.varint(kind == .null ? 0 : (try reader.readBool() ? 1 : 0))
    case .enumeration:
      if kind == .string {
        _ = try reader.readStringBytes()
        writer.varint(0)
      } else {
        writer.varint(UInt64(bitPattern: kind == .null ? 0 : try integer(from: &reader)))
      }
    case .fixed64, .sfixed64:
      writer.fixed64(UInt64(bitPattern: kind == .null ? 0 : try integer(from: &reader)))
    case .fixed32, .sfixed32:
      writer.fixed32(UInt32(truncatingIfNeeded: kind == .null ? 0 : try integer(from: &reader)))
    case .sint32, .sint64:
      let value = kind == .null ? 0 : try integer(from: &reader)
      writer.varint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    case .int32, .uint32:
      writer.varint(Self.varintBits(kind == .null ? 0 : try integer(from: &reader), as: type))
    default:
      writer.varint(UInt64(bitPattern: kind == .null ? 0 : try integer(from: &reader)))
    }
  }

  /// An integer as a varint field of `type` holds it (int64, uint64, int32 or uint32), held to
  /// the type's range as a number too large for Int64 is (`integer(from:)`): a count of 2^33
  /// wrapped into an int32 read as a small or negative number, the wrong answer in silence.
  @inline(__always)
  static func varintBits(_ value: Int64, as type: MessageSchema.FieldType) -> UInt64 {
    switch type {
    // Negative int32 values take ten bytes on the wire, sign-extended like int64.
    case .int32: UInt64(bitPattern: Int64(Int32(clamping: value)))
    case .uint32: UInt64(UInt32(clamping: value))
    case .uint64: UInt64(clamping: value)
    default: UInt64(bitPattern: value)
    }
  }

  /// An integer from a JSON number; a fraction is dropped rather than failing the whole reply.
  private func integer(from reader: inout JSONReader) throws -> Int64 {
    if let value = reader.readPlainInteger() { return value }
    let text = try reader.readNumberText()
    let string = String(decoding: text, as: UTF8.self)
    if let value = Int64(string) { return value }
    guard let double = Double(string), double.isFinite else { return 0 }
    return Int64(exactly: double.rounded(.towardZero)) ?? (double < 0 ? Int64.min : Int64.max)
  }
}
