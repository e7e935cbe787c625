@testable import ProtoJSON

/// The JSON keys that a converted message carries in its `extra_fields`, anywhere inside it, as
/// "Message.key": what the .proto does not name yet.
enum PassthroughKeys {
  static func collect(_ bytes: [UInt8], typeName: String, schema: Schema) throws -> Set<String> {
    var keys = Set<String>()
    try walk(bytes, 0..<bytes.count, typeName, schema, &keys)
    return keys
  }

  private static func walk(
    _ bytes: [UInt8], _ range: Range<Int>, _ typeName: String, _ schema: Schema, _ keys: inout Set<String>
  ) throws {
    guard let message = schema.message(typeName), !WellKnownJSON.isWellKnown(typeName) else { return }
    var reader = ProtoWireReader(bytes, range: range)
    while let field = try reader.next() {
      guard let index = message.fieldIndex(number: field.number) else { continue }
      let schemaField = message.fields[index]
      guard schemaField.type == .message, field.wireType == .lengthDelimited else { continue }
      if schemaField.name == "extra_fields" || schemaField.name == "other" {
        var entries = ProtoWireReader(bytes, range: field.range)
        while let entry = try entries.next() {
          guard entry.number == 1 else { continue }
          var parts = ProtoWireReader(bytes, range: entry.range)
          while let part = try parts.next() {
            guard part.number == 1 else { continue }
            let name = message.fullName.split(separator: ".").last!
            keys.insert(name + "." + String(decoding: bytes[part.range], as: UTF8.self))
          }
        }
        continue
      }
      try walk(bytes, field.range, schemaField.typeName, schema, &keys)
    }
  }
}
