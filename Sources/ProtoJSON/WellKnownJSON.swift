/// google.protobuf.Struct, Value and ListValue: arbitrary JSON, both ways.
enum WellKnownJSON {
  static let structName = "google.protobuf.Struct"
  static let valueName = "google.protobuf.Value"
  static let listValueName = "google.protobuf.ListValue"

  static func isWellKnown(_ name: String) -> Bool {
    name == structName || name == valueName || name == listValueName
  }

  // MARK: JSON to protobuf

  /// Writes the next JSON value as the body of a message of the well-known type `name`.
  static func writeBody(of name: String, from reader: inout JSONReader, to writer: inout ProtoWireWriter) throws {
    switch name {
    case structName: try writeStructBody(from: &reader, to: &writer)
    case listValueName: try writeListBody(from: &reader, to: &writer)
    default: try writeValueBody(from: &reader, to: &writer)
    }
  }

  static func writeStructBody(from reader: inout JSONReader, to writer: inout ProtoWireWriter) throws {
    guard try reader.peekKind() == .object else { throw ProtoJSONError("expected a JSON object for a Struct") }
    try reader.beginObject()
    while let key = try reader.nextKeySlice() {
      try writeStructEntry(key: key, from: &reader, to: &writer)
    }
  }

  /// One `fields` entry of a Struct: the key and the next JSON value.
  static func writeStructEntry(
    key: ArraySlice<UInt8>, from reader: inout JSONReader, to writer: inout ProtoWireWriter
  ) throws {
    let entry = writer.begin(1)
    writer.lengthDelimited(1, key)
    let value = writer.begin(2)
    try writeValueBody(from: &reader, to: &writer)
    writer.end(value)
    writer.end(entry)
  }

  static func writeListBody(from reader: inout JSONReader, to writer: inout ProtoWireWriter) throws {
    guard try reader.peekKind() == .array else { throw ProtoJSONError("expected a JSON array for a ListValue") }
    try reader.beginArray()
    while try reader.nextElement() {
      let value = writer.begin(1)
      try writeValueBody(from: &reader, to: &writer)
      writer.end(value)
    }
  }

  static func writeValueBody(from reader: inout JSONReader, to writer: inout ProtoWireWriter) throws {
    switch try reader.peekKind() {
    case .null:
      try reader.readNull()
      writer.tag(1, .varint)
      writer.varint(0)
    case .number:
      writer.tag(2, .fixed64)
      writer.fixed64(try reader.readDouble().bitPattern)
    case .string:
      writer.lengthDelimited(3, try reader.readStringBytes())
    case .bool:
      writer.tag(4, .varint)
      writer.varint(try reader.readBool() ? 1 : 0)
    case .object:
      let start = writer.begin(5)
      try writeStructBody(from: &reader, to: &writer)
      writer.end(start)
    case .array:
      let start = writer.begin(6)
      try writeListBody(from: &reader, to: &writer)
      writer.end(start)
    }
  }

  // MARK: Protobuf to JSON

  /// Nested messages (Struct in Value in Struct, ...) cost a few bytes a level on the wire and a
  /// stack frame or three to write: a request of nested Structs would overflow the stack. A value
  /// nested deeper than the gateway's own JSON reader accepts (counting the value itself) is
  /// refused instead; called before writing each message or Value.
  static func checkDepth(of json: JSONWriter) throws {
    guard json.depth < JSONReader.maximumDepth else {
      throw ProtoJSONError("nested deeper than \(JSONReader.maximumDepth)")
    }
  }

  static func writeJSON(of name: String, bytes: [UInt8], range: Range<Int>, to json: inout JSONWriter) throws {
    switch name {
    case structName:
      json.beginObject()
      try writeStructMembers(bytes: bytes, range: range, to: &json)
      json.endObject()
    case listValueName: try writeList(bytes: bytes, range: range, to: &json)
    default: try writeValue(bytes: bytes, range: range, to: &json)
    }
  }

  /// A Struct's entries as `"key": value` members of the object being written.
  static func writeStructMembers(bytes: [UInt8], range: Range<Int>, to json: inout JSONWriter) throws {
    var reader = ProtoWireReader(bytes, range: range)
    while let field = try reader.next() {
      guard field.number == 1, field.wireType == .lengthDelimited else { continue }
      var entry = ProtoWireReader(bytes, range: field.range)
      var key: Range<Int>? = nil
      var value: Range<Int>? = nil
      while let part = try entry.next() {
        if part.number == 1 && part.wireType == .lengthDelimited { key = part.range }
        if part.number == 2 && part.wireType == .lengthDelimited { value = part.range }
      }
      json.key(bytes: bytes[key ?? 0..<0])
      if let value {
        try writeValue(bytes: bytes, range: value, to: &json)
      } else {
        json.null()
      }
    }
  }

  static func writeList(bytes: [UInt8], range: Range<Int>, to json: inout JSONWriter) throws {
    json.beginArray()
    var reader = ProtoWireReader(bytes, range: range)
    while let field = try reader.next() {
      guard field.number == 1, field.wireType == .lengthDelimited else { continue }
      try writeValue(bytes: bytes, range: field.range, to: &json)
    }
    json.endArray()
  }

  static func writeValue(bytes: [UInt8], range: Range<Int>, to json: inout JSONWriter) throws {
    try checkDepth(of: json)
    // A oneof: the last member on the wire wins, as protobuf's merge rules say.
    var reader = ProtoWireReader(bytes, range: range)
    var chosen: WireField? = nil
    while let field = try reader.next() {
      if (1...6).contains(field.number) { chosen = field }
    }
    guard let field = chosen else {
      json.null()
      return
    }
    switch (field.number, field.wireType) {
    case (2, .fixed64): json.double(Double(bitPattern: field.scalar))
    case (3, .lengthDelimited): json.string(utf8: bytes[field.range])
    case (4, .varint): json.bool(field.scalar != 0)
    case (5, .lengthDelimited):
      json.beginObject()
      try writeStructMembers(bytes: bytes, range: field.range, to: &json)
      json.endObject()
    case (6, .lengthDelimited): try writeList(bytes: bytes, range: field.range, to: &json)
    default: json.null()
    }
  }
}
