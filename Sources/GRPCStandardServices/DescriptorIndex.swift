import CProtobufC
import GatewayProtos
import ProtobufCMessages

/// What server reflection needs to know of a FileDescriptorSet: each file's serialized
/// FileDescriptorProto, its imports, and which file defines each symbol and extension.
struct DescriptorIndex: Sendable {
  struct Extension: Sendable {
    var number: Int32
    var file: String
  }

  private(set) var files: [String: [UInt8]] = [:]
  private(set) var dependencies: [String: [String]] = [:]
  private(set) var fileBySymbol: [String: String] = [:]
  private(set) var messageTypes: Set<String> = []
  /// Extensions by the fully-qualified name of the message they extend.
  private(set) var extensions: [String: [Extension]] = [:]

  /// Nil when `descriptorSet` is not a FileDescriptorSet.
  init?(descriptorSet: [UInt8]) {
    guard
      let set = ProtobufC.decode(
        descriptorSet, google__protobuf__file_descriptor_set__descriptor_ptr(),
        as: Google__Protobuf__FileDescriptorSet.self)
    else { return nil }
    defer { ProtobufC.free(set) }
    for fileIndex in 0..<set.pointee.n_file {
      guard let file = set.pointee.file[fileIndex] else { continue }
      add(file)
    }
  }

  /// The named file followed by everything it imports, directly or not, each once.
  func fileWithDependencies(_ name: String) -> [[UInt8]]? {
    guard files[name] != nil else { return nil }
    var ordered: [String] = []
    var seen: Set<String> = []
    var pending = [name]
    while let next = pending.popLast() {
      guard seen.insert(next).inserted else { continue }
      ordered.append(next)
      pending.append(contentsOf: dependencies[next, default: []].reversed())
    }
    return ordered.compactMap { files[$0] }
  }

  private mutating func add(_ file: UnsafeMutablePointer<Google__Protobuf__FileDescriptorProto>) {
    let name = string(file.pointee.name)
    files[name] = ProtobufC.encode(UnsafePointer(file))
    dependencies[name] = (0..<file.pointee.n_dependency).map { string(file.pointee.dependency[$0]) }
    let package = string(file.pointee.package)
    let prefix = package.isEmpty ? "" : package + "."
    for index in 0..<file.pointee.n_message_type {
      addMessage(file.pointee.message_type[index]!, scope: prefix, file: name)
    }
    for index in 0..<file.pointee.n_enum_type {
      fileBySymbol[prefix + string(file.pointee.enum_type[index]!.pointee.name)] = name
    }
    for index in 0..<file.pointee.n_service {
      let service = file.pointee.service[index]!
      let serviceName = prefix + string(service.pointee.name)
      fileBySymbol[serviceName] = name
      for methodIndex in 0..<service.pointee.n_method {
        fileBySymbol[serviceName + "." + string(service.pointee.method[methodIndex]!.pointee.name)] = name
      }
    }
    for index in 0..<file.pointee.n_extension {
      addExtension(file.pointee.`extension`[index]!, scope: prefix, file: name)
    }
  }

  private mutating func addMessage(
    _ message: UnsafeMutablePointer<Google__Protobuf__DescriptorProto>, scope: String, file: String
  ) {
    let fullName = scope + string(message.pointee.name)
    fileBySymbol[fullName] = file
    messageTypes.insert(fullName)
    for index in 0..<message.pointee.n_nested_type {
      addMessage(message.pointee.nested_type[index]!, scope: fullName + ".", file: file)
    }
    for index in 0..<message.pointee.n_enum_type {
      fileBySymbol[fullName + "." + string(message.pointee.enum_type[index]!.pointee.name)] = file
    }
    for index in 0..<message.pointee.n_extension {
      addExtension(message.pointee.`extension`[index]!, scope: fullName + ".", file: file)
    }
  }

  private mutating func addExtension(
    _ field: UnsafeMutablePointer<Google__Protobuf__FieldDescriptorProto>, scope: String, file: String
  ) {
    fileBySymbol[scope + string(field.pointee.name)] = file
    var extendee = string(field.pointee.extendee)
    if extendee.hasPrefix(".") { extendee.removeFirst() }
    extensions[extendee, default: []].append(Extension(number: field.pointee.number, file: file))
  }

  /// proto2 leaves absent strings NULL.
  private func string(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
    pointer.map { String(cString: $0) } ?? ""
  }
}
