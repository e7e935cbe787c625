import CProtobufC
import GatewayProtos
import ProtobufCMessages

extension Schema {
  /// The schema of every message in a serialized FileDescriptorSet, read with protobuf-c's own
  /// descriptor.proto. Nil when the bytes are not a FileDescriptorSet.
  public init?(descriptorSet: [UInt8]) {
    guard
      let set = ProtobufC.decode(
        descriptorSet, google__protobuf__file_descriptor_set__descriptor_ptr(),
        as: Google__Protobuf__FileDescriptorSet.self)
    else { return nil }
    defer { ProtobufC.free(set) }
    var messages: [String: MessageSchema] = [:]
    var enums: [String: EnumSchema] = [:]
    var methods: [String: (input: String, output: String)] = [:]
    for fileIndex in 0..<set.pointee.n_file {
      guard let file = set.pointee.file[fileIndex] else { continue }
      let package = string(file.pointee.package)
      let scope = package.isEmpty ? "" : package + "."
      // proto3 fields have implicit presence unless marked `optional`; proto2 (whose descriptors
      // leave `syntax` empty) and editions track presence for every singular field.
      let implicitPresence = string(file.pointee.syntax) == "proto3"
      for index in 0..<file.pointee.n_message_type {
        collect(
          file.pointee.message_type[index]!, scope: scope, implicitPresence: implicitPresence, into: &messages,
          enums: &enums)
      }
      for index in 0..<file.pointee.n_enum_type {
        collect(file.pointee.enum_type[index]!, scope: scope, into: &enums)
      }
      for index in 0..<file.pointee.n_service {
        let service = file.pointee.service[index]!.pointee
        let servicePath = "/" + scope + string(service.name) + "/"
        for methodIndex in 0..<service.n_method {
          let method = service.method[methodIndex]!.pointee
          methods[servicePath + string(method.name)] = (
            input: withoutLeadingDot(string(method.input_type)), output: withoutLeadingDot(string(method.output_type))
          )
        }
      }
    }
    self.init(messages: messages, enums: enums, methods: methods)
  }

  /// The descriptor set generated from this project's protos.
  public static let bundled: Schema = {
    let bytes = Array(UnsafeBufferPointer(start: gateway_descriptor_set_ptr(), count: Int(gateway_descriptor_set_size)))
    guard let schema = Schema(descriptorSet: bytes) else {
      fatalError("the bundled descriptor set does not parse; rerun tools/generate-protos")
    }
    return schema
  }()
}

private func collect(
  _ message: UnsafeMutablePointer<Google__Protobuf__DescriptorProto>, scope: String, implicitPresence: Bool,
  into messages: inout [String: MessageSchema], enums: inout [String: EnumSchema]
) {
  let fullName = scope + string(message.pointee.name)
  var oneofNames = (0..<message.pointee.n_oneof_decl).map { string(message.pointee.oneof_decl[$0]!.pointee.name) }
  var oneofMembers = [[Int]](repeating: [], count: oneofNames.count)
  var syntheticOneofs = Set<Int>()
  var fields: [MessageSchema.Field] = []
  for index in 0..<message.pointee.n_field {
    let field = message.pointee.field[index]!.pointee
    let typeName = withoutLeadingDot(string(field.type_name))
    var oneofIndex: Int? = field.has_oneof_index != 0 ? Int(field.oneof_index) : nil
    let isProto3Optional = field.has_proto3_optional != 0 && field.proto3_optional != 0
    if isProto3Optional, let synthetic = oneofIndex {
      syntheticOneofs.insert(synthetic)
      oneofIndex = nil
    }
    if let oneofIndex { oneofMembers[oneofIndex].append(fields.count) }
    let type = MessageSchema.FieldType(rawValue: Int32(field.type.rawValue)) ?? .bytes
    let isRepeated = field.label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED
    let name = string(field.name)
    // protoc fills json_name in every descriptor it writes; other producers may not.
    let jsonName = field.json_name.map { String(cString: $0) } ?? MessageSchema.Field.jsonName(of: name)
    fields.append(
      MessageSchema.Field(
        name: name, number: field.number, type: type, isRepeated: isRepeated, typeName: typeName,
        oneofIndex: oneofIndex, jsonName: jsonName,
        hasPresence: !isRepeated
          && (!implicitPresence || isProto3Optional || oneofIndex != nil || type == .message || type == .group)))
  }
  // Drop the synthetic oneofs of proto3 `optional` fields, renumbering the real ones.
  var renumbered: [Int: Int] = [:]
  var oneofs: [MessageSchema.Oneof] = []
  for index in oneofNames.indices where !syntheticOneofs.contains(index) {
    renumbered[index] = oneofs.count
    oneofs.append(MessageSchema.Oneof(name: oneofNames[index], fieldIndices: oneofMembers[index]))
  }
  oneofNames.removeAll()
  fields = fields.map { field in
    guard let old = field.oneofIndex else { return field }
    return MessageSchema.Field(
      name: field.name, number: field.number, type: field.type, isRepeated: field.isRepeated,
      typeName: field.typeName, oneofIndex: renumbered[old], jsonName: field.jsonName, hasPresence: field.hasPresence)
  }
  let isMapEntry = message.pointee.options.map { $0.pointee.has_map_entry != 0 && $0.pointee.map_entry != 0 } ?? false
  messages[fullName] = MessageSchema(fullName: fullName, fields: fields, oneofs: oneofs, isMapEntry: isMapEntry)
  for index in 0..<message.pointee.n_nested_type {
    collect(
      message.pointee.nested_type[index]!, scope: fullName + ".", implicitPresence: implicitPresence,
      into: &messages, enums: &enums)
  }
  for index in 0..<message.pointee.n_enum_type {
    collect(message.pointee.enum_type[index]!, scope: fullName + ".", into: &enums)
  }
}

private func collect(
  _ enumType: UnsafeMutablePointer<Google__Protobuf__EnumDescriptorProto>, scope: String,
  into enums: inout [String: EnumSchema]
) {
  let fullName = scope + string(enumType.pointee.name)
  let values = (0..<enumType.pointee.n_value).map { index in
    let value = enumType.pointee.value[index]!.pointee
    return (name: string(value.name), number: value.number)
  }
  enums[fullName] = EnumSchema(fullName: fullName, values: values)
}

private func withoutLeadingDot(_ name: String) -> String {
  name.hasPrefix(".") ? String(name.dropFirst()) : name
}

/// proto2 leaves absent strings NULL.
private func string(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
  pointer.map { String(cString: $0) } ?? ""
}
