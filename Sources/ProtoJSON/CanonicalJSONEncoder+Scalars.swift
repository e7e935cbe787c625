/// Scalars as canonical proto3 JSON prints them: 64-bit integers as decimal strings, floats in
/// their shortest form with "NaN" and the infinities as strings, bytes as padded base64, enums
/// by name (an unknown number as itself), NullValue as null.
extension CanonicalJSONEncoder {
  /// One value of a scalar field (of a repeated field: one element): the varint or fixed bits in
  /// `scalar`, or the string or bytes at `range`.
  mutating func writeScalar(_ field: MessageSchema.Field, scalar: UInt64, range: Range<Int>, bytes: [UInt8])
    throws(ProtoJSONError)
  {
    switch field.type {
    case .double:
      let value = Double(bitPattern: scalar)
      if let special = CanonicalScalars.special(value) {
        json.string(special)
      } else {
        json.raw(Array(CanonicalScalars.text(value).utf8))
      }
    case .float:
      let value = Float(bitPattern: UInt32(truncatingIfNeeded: scalar))
      if let special = CanonicalScalars.special(Double(value)) {
        json.string(special)
      } else {
        json.raw(Array(CanonicalScalars.text(value).utf8))
      }
    case .int32, .sint32, .sfixed32, .uint32, .fixed32:
      json.raw(Array(Self.integerText(field.type, scalar).utf8))
    case .int64, .sint64, .sfixed64, .uint64, .fixed64:
      // 64-bit integers are strings: JavaScript's numbers hold 53 bits.
      json.string(Self.integerText(field.type, scalar))
    case .bool:
      json.bool(scalar != 0)
    case .enumeration:
      writeEnum(field.typeName, Int32(truncatingIfNeeded: scalar))
    case .string:
      guard UTF8Validation.isValid(bytes[range]) else { throw path.error("string is not valid UTF-8") }
      json.string(utf8: bytes[range])
    case .bytes:
      json.string(Base64Standard.encode(bytes[range]))
    case .message, .group:
      throw path.error("\(field.typeName) is not a scalar")
    }
  }

  private mutating func writeEnum(_ typeName: String, _ number: Int32) {
    if typeName == WellKnownType.nullValueName {
      json.null()
    } else if let name = codec.schema.enumType(typeName)?.name(of: number) {
      json.string(name)
    } else {
      json.int(Int64(number))
    }
  }

  /// An integer field's value in decimal, from its wire bits.
  static func integerText(_ type: MessageSchema.FieldType, _ scalar: UInt64) -> String {
    switch type {
    case .int32, .sfixed32, .enumeration: String(Int32(truncatingIfNeeded: scalar))
    case .uint32, .fixed32: String(UInt32(truncatingIfNeeded: scalar))
    case .sint32:
      String(Int32(bitPattern: UInt32(truncatingIfNeeded: scalar) >> 1) ^ -Int32(truncatingIfNeeded: scalar & 1))
    case .sint64: String(Int64(bitPattern: scalar >> 1) ^ -Int64(bitPattern: scalar & 1))
    case .uint64, .fixed64: String(scalar)
    default: String(Int64(bitPattern: scalar))
    }
  }

  /// Whether an implicit-presence field holds its default, judged as the field's type reads the
  /// bits (an int32 whose varint has only high bits set is 0). Floats compare by bits: -0.0 is
  /// set.
  func isDefault(_ type: MessageSchema.FieldType, _ field: WireField) -> Bool {
    switch type {
    case .string, .bytes: field.range.isEmpty
    case .int32, .uint32, .sint32, .enumeration, .fixed32, .sfixed32, .float:
      UInt32(truncatingIfNeeded: field.scalar) == 0
    default: field.scalar == 0
    }
  }
}
