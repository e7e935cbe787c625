/// What the translator knows of a protobuf message: its fields by name and number, its oneofs,
/// and the roles the API's conventions give some of them (see proto/vllmgateway/v1/common.proto).
public final class MessageSchema: Sendable {
  public enum FieldType: Int32, Sendable {
    case double = 1, float, int64, uint64, int32, fixed64, fixed32, bool, string, group, message, bytes
    case uint32, enumeration, sfixed32, sfixed64, sint32, sint64
  }

  public struct Field: Sendable {
    public let name: String
    public let number: Int32
    public let type: FieldType
    public let isRepeated: Bool
    /// For message and enum fields: the type's full name, without a leading dot.
    public let typeName: String
    /// The real (not proto3-optional) oneof this field belongs to.
    public let oneofIndex: Int?

    /// Repeated scalars of these types travel packed in proto3.
    public var isPackable: Bool {
      switch type {
      case .string, .bytes, .message, .group: false
      default: true
      }
    }
  }

  public struct Oneof: Sendable {
    public let name: String
    public let fieldIndices: [Int]
  }

  public let fullName: String
  public let fields: [Field]
  public let oneofs: [Oneof]
  public let isMapEntry: Bool
  private let indexByName: [String: Int]
  private let indexByNumber: [Int32: Int]
  private let oneofByName: [String: Int]

  public init(fullName: String, fields: [Field], oneofs: [Oneof], isMapEntry: Bool) {
    self.fullName = fullName
    self.fields = fields
    self.oneofs = oneofs
    self.isMapEntry = isMapEntry
    var byName: [String: Int] = [:]
    var byNumber: [Int32: Int] = [:]
    for (index, field) in fields.enumerated() {
      byName[field.name] = index
      byNumber[field.number] = index
    }
    indexByName = byName
    indexByNumber = byNumber
    oneofByName = Dictionary(oneofs.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
  }

  public func fieldIndex(named name: String) -> Int? { indexByName[name] }
  public func fieldIndex(number: Int32) -> Int? { indexByNumber[number] }
  public func oneofIndex(named name: String) -> Int? { oneofByName[name] }

  /// A list: one field, repeated, named `values`. It stands for a JSON array.
  public var listField: Field? {
    fields.count == 1 && fields[0].isRepeated && fields[0].name == "values" ? fields[0] : nil
  }

  /// The oneof named `variant`: the message is a JSON object tagged by "type".
  public var variantOneof: Oneof? { oneofIndex(named: "variant").map { oneofs[$0] } }

  /// `extra_body` or `extra_fields`: a Struct whose keys belong to this object's JSON.
  public var passthroughField: Field? {
    for name in ["extra_fields", "extra_body"] {
      if let index = fieldIndex(named: name), fields[index].typeName == "google.protobuf.Struct" {
        return fields[index]
      }
    }
    return nil
  }

  /// In a variant message: `other`, a Struct holding objects of a type the API does not name.
  public var otherField: Field? {
    guard let index = fieldIndex(named: "other"), fields[index].typeName == "google.protobuf.Struct" else {
      return nil
    }
    return fields[index]
  }
}

/// Every message the translator may meet, by full name.
public struct Schema: Sendable {
  public let messages: [String: MessageSchema]

  public init(messages: [String: MessageSchema]) {
    self.messages = messages
  }

  public func message(_ fullName: String) -> MessageSchema? {
    messages[fullName]
  }
}
