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
    for fileIndex in 0..<set.pointee.n_file {
      guard let file = set.pointee.file[fileIndex] else { continue }
      let package = string(file.pointee.package)
      let scope = package.isEmpty ? "" : package + "."
      for index in 0..<file.pointee.n_message_type {
        collect(file.pointee.message_type[index]!, scope: scope, into: &messages)
      }
    }
    self.init(messages: messages)
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
  _ message: UnsafeMutablePointer<Google__Protobuf__DescriptorProto>, scope: String,
  into messages: inout [String: MessageSchema]
) {
  let fullName = scope + string(message.pointee.name)
  var oneofNames = (0..<message.pointee.n_oneof_decl).map { string(message.pointee.oneof_decl[$0]!.pointee.name) }
  var oneofMembers = [[Int]](repeating: [], count: oneofNames.count)
  var syntheticOneofs = Set<Int>()
  var fields: [MessageSchema.Field] = []
  for index in 0..<message.pointee.n_field {
    let field = message.pointee.field[index]!.pointee
    var typeName = string(field.type_name)
    if typeName.hasPrefix(".") { typeName.removeFirst() }
    var oneofIndex: Int? = field.has_oneof_index != 0 ? Int(field.oneof_index) : nil
    if field.has_proto3_optional != 0 && field.proto3_optional != 0, let synthetic = oneofIndex {
      syntheticOneofs.insert(synthetic)
      oneofIndex = nil
    }
    if let oneofIndex { oneofMembers[oneofIndex].append(fields.count) }
    fields.append(
      MessageSchema.Field(
        name: string(field.name), number: field.number,
        type: MessageSchema.FieldType(rawValue: Int32(field.type.rawValue)) ?? .bytes,
        isRepeated: field.label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED,
        typeName: typeName, oneofIndex: oneofIndex))
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
      typeName: field.typeName, oneofIndex: renumbered[old])
  }
  let isMapEntry = message.pointee.options.map { $0.pointee.has_map_entry != 0 && $0.pointee.map_entry != 0 } ?? false
  messages[fullName] = MessageSchema(fullName: fullName, fields: fields, oneofs: oneofs, isMapEntry: isMapEntry)
  for index in 0..<message.pointee.n_nested_type {
    collect(message.pointee.nested_type[index]!, scope: fullName + ".", into: &messages)
  }
}

/// proto2 leaves absent strings NULL.
private func string(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
  pointer.map { String(cString: $0) } ?? ""
}
