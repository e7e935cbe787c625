/// Scalars read from JSON as canonical proto3 JSON spells them: integers as numbers or numeric
/// strings (64-bit ones usually strings), floats also as "NaN" and the infinities, bytes as base64,
/// enums by name or number. Each comes back as the wire holds it, its tag not yet written.
extension CanonicalJSONDecoder {
  /// One scalar value of `field`'s type (of a repeated field: one element).
  mutating func readScalar(_ field: MessageSchema.Field) throws(ProtoJSONError) -> WireValue {
    let kind = try peekKind()
    switch field.type {
    case .string:
      guard kind == .string else { throw path.error("expected a string") }
      return .bytes(try readStringBytes())
    case .bytes:
      guard kind == .string else { throw path.error("expected a base64 string") }
      guard let decoded = CanonicalScalars.base64(try readStringBytes()) else { throw path.error("invalid base64") }
      return .bytes(decoded)
    case .bool:
      guard kind == .bool else { throw path.error("expected true or false") }
      return .varint(try readBool() ? 1 : 0)
    case .enumeration:
      return try readEnum(field.typeName)
    case .double:
      return .fixed64(try readFloating(isFloat: false).bitPattern)
    case .float:
      return .fixed32(Float(try readFloating(isFloat: true)).bitPattern)
    case .message, .group:
      throw path.error("\(field.typeName) is not a scalar")
    default:
      let text: [UInt8]
      switch kind {
      case .number: text = try readNumberText()
      case .string:
        text = try readStringBytes()
        guard CanonicalScalars.isNumber(text) else {
          throw path.error("\"\(String(decoding: text, as: UTF8.self))\" is not an integer")
        }
      default: throw path.error("expected an integer")
      }
      return try integerValue(text, field.type)
    }
  }

  /// A number (or numeric string) as an integer of `type`, encoded as that type is on the wire.
  func integerValue(_ text: [UInt8], _ type: MessageSchema.FieldType) throws(ProtoJSONError) -> WireValue {
    let bits: UInt64
    do {
      bits = try CanonicalScalars.integer(text[...], as: type)
    } catch {
      let spelled = String(decoding: text, as: UTF8.self)
      switch error {
      case .notAnInteger: throw path.error("\(spelled) is not an integer")
      case .outOfRange: throw path.error("\(spelled) is out of range for \(Self.name(of: type))")
      }
    }
    switch type {
    case .sint32:
      let value = Int32(truncatingIfNeeded: bits)
      return .varint(UInt64(UInt32(bitPattern: (value << 1) ^ (value >> 31))))
    case .sint64:
      let value = Int64(bitPattern: bits)
      return .varint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    case .fixed32, .sfixed32: return .fixed32(UInt32(truncatingIfNeeded: bits))
    case .fixed64, .sfixed64: return .fixed64(bits)
    // int32 and enums are sign-extended to 64 bits on the wire, as protobuf writes them.
    default: return .varint(bits)
    }
  }

  /// A float or double: a number, a numeric string, or "NaN", "Infinity", "-Infinity".
  private mutating func readFloating(isFloat: Bool) throws(ProtoJSONError) -> Double {
    let text: [UInt8]
    switch try peekKind() {
    case .number:
      text = try readNumberText()
    case .string:
      text = try readStringBytes()
      if text.elementsEqual("NaN".utf8) { return .nan }
      if text.elementsEqual("Infinity".utf8) { return .infinity }
      if text.elementsEqual("-Infinity".utf8) { return -.infinity }
      guard CanonicalScalars.isNumber(text) else {
        throw path.error("\"\(String(decoding: text, as: UTF8.self))\" is not a number")
      }
    default:
      throw path.error("expected a number")
    }
    let spelled = String(decoding: text, as: UTF8.self)
    // A float takes any double that rounds to a finite float (3.4028235e38, its largest, is
    // printed so), as protobuf-go does.
    guard let value = Double(spelled), value.isFinite, !isFloat || Float(value).isFinite else {
      throw path.error("\(spelled) is out of range for \(isFloat ? "float" : "double")")
    }
    return value
  }

  /// An enum value by name, or by number (any int32: proto3 enums are open).
  private mutating func readEnum(_ typeName: String) throws(ProtoJSONError) -> WireValue {
    switch try peekKind() {
    case .number:
      return try integerValue(try readNumberText(), .enumeration)
    case .string:
      let text = try readStringBytes()
      let name = String(decoding: text, as: UTF8.self)
      if let number = codec.schema.enumType(typeName)?.number(named: name) {
        return .varint(UInt64(bitPattern: Int64(number)))
      }
      if CanonicalScalars.isNumber(text), let value = try? integerValue(text, .enumeration) { return value }
      throw path.error("unknown value \"\(name)\" for enum \(typeName)")
    default:
      throw path.error("expected an enum name or number")
    }
  }

  static func name(of type: MessageSchema.FieldType) -> String {
    switch type {
    case .int32: "int32"
    case .sint32: "sint32"
    case .sfixed32: "sfixed32"
    case .uint32: "uint32"
    case .fixed32: "fixed32"
    case .int64: "int64"
    case .sint64: "sint64"
    case .sfixed64: "sfixed64"
    case .uint64: "uint64"
    case .fixed64: "fixed64"
    case .enumeration: "an enum"
    default: "\(type)"
    }
  }
}
