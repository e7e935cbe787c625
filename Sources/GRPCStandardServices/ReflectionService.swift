import CProtobufC
import GRPCServer
import GatewayProtos
import ProtobufCMessages

/// Server reflection, `grpc.reflection.v1` and `grpc.reflection.v1alpha` (most tools still ask
/// for the older one). Their messages are identical on the wire, so one implementation, written
/// against the v1 types, serves both.
public struct ReflectionService: ServiceProvider {
  public enum Version: String, Sendable, CaseIterable {
    case v1 = "grpc.reflection.v1"
    case v1alpha = "grpc.reflection.v1alpha"
  }

  /// The two service names, for the list of services the server reports.
  public static let serviceNames = Version.allCases.map { $0.rawValue + ".ServerReflection" }

  public let version: Version
  public var serviceName: String { version.rawValue + ".ServerReflection" }
  private let index: DescriptorIndex
  private let services: [String]

  /// Both versions over one parsed descriptor set; nil when it does not parse.
  /// - Parameters:
  ///   - descriptorSet: a serialized FileDescriptorSet holding every served file and its imports.
  ///   - services: the fully-qualified names of the services the server answers.
  public static func bothVersions(descriptorSet: [UInt8], services: [String]) -> [ReflectionService]? {
    guard let index = DescriptorIndex(descriptorSet: descriptorSet) else { return nil }
    return Version.allCases.map { ReflectionService(version: $0, index: index, services: services) }
  }

  private init(version: Version, index: DescriptorIndex, services: [String]) {
    self.version = version
    self.index = index
    self.services = services
  }

  /// The descriptor set generated from this project's protos.
  public static var bundledDescriptorSet: [UInt8] {
    Array(UnsafeBufferPointer(start: gateway_descriptor_set_ptr(), count: Int(gateway_descriptor_set_size)))
  }

  public var routes: [Route] {
    let index = self.index
    let services = self.services
    return [
      .streaming("/\(serviceName)/ServerReflectionInfo") { call in
        ReflectionCallHandler(call: call, index: index, services: services)
      }
    ]
  }
}

/// One ServerReflectionInfo stream: a response for each request, in order.
final class ReflectionCallHandler: ServerCallHandler {
  private let call: ServerCall
  private let index: DescriptorIndex
  private let services: [String]

  init(call: ServerCall, index: DescriptorIndex, services: [String]) {
    self.call = call
    self.index = index
    self.services = services
  }

  func didReceiveEnd() {
    call.finish(.ok)
  }

  func didReceive(_ message: [UInt8]) {
    guard
      let request = ProtobufC.decode(
        message, grpc__reflection__v1__server_reflection_request__descriptor_ptr(),
        as: Grpc__Reflection__V1__ServerReflectionRequest.self)
    else {
      call.finish(Status(.internal, "could not parse ServerReflectionRequest"))
      return
    }
    defer { ProtobufC.free(request) }
    call.send(respond(to: request))
  }

  private enum Answer {
    case files([[UInt8]])
    case extensionNumbers(type: String, numbers: [Int32])
    case services([String])
    case error(Status.Code, String)
  }

  private func answer(_ request: UnsafeMutablePointer<Grpc__Reflection__V1__ServerReflectionRequest>) -> Answer {
    let request = request.pointee
    switch request.message_request_case {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
      let name = String(cString: request.file_by_filename)
      guard let files = index.fileWithDependencies(name) else { return .error(.notFound, "file not found: \(name)") }
      return .files(files)
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
      var symbol = String(cString: request.file_containing_symbol)
      if symbol.hasPrefix(".") { symbol.removeFirst() }
      guard let file = index.fileBySymbol[symbol], let files = index.fileWithDependencies(file) else {
        return .error(.notFound, "symbol not found: \(symbol)")
      }
      return .files(files)
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
      guard let extensionRequest = request.file_containing_extension else {
        return .error(.invalidArgument, "file_containing_extension is empty")
      }
      let type = String(cString: extensionRequest.pointee.containing_type)
      let number = extensionRequest.pointee.extension_number
      guard let found = index.extensions[type]?.first(where: { $0.number == number }),
        let files = index.fileWithDependencies(found.file)
      else { return .error(.notFound, "extension \(number) of \(type) not found") }
      return .files(files)
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
      let type = String(cString: request.all_extension_numbers_of_type)
      guard index.messageTypes.contains(type) else { return .error(.notFound, "message type not found: \(type)") }
      return .extensionNumbers(type: type, numbers: index.extensions[type, default: []].map(\.number))
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
      return .services(services)
    default:
      return .error(.invalidArgument, "ServerReflectionRequest names no request")
    }
  }

  private func respond(to request: UnsafeMutablePointer<Grpc__Reflection__V1__ServerReflectionRequest>) -> [UInt8] {
    let memory = CAllocations()
    var response = Grpc__Reflection__V1__ServerReflectionResponse()
    grpc__reflection__v1__server_reflection_response__init(&response)
    response.valid_host = request.pointee.host
    response.original_request = request
    var files = Grpc__Reflection__V1__FileDescriptorResponse()
    var numbers = Grpc__Reflection__V1__ExtensionNumberResponse()
    var list = Grpc__Reflection__V1__ListServiceResponse()
    var failure = Grpc__Reflection__V1__ErrorResponse()
    let serviceEntries = memory.array(of: Grpc__Reflection__V1__ServiceResponse.self, count: services.count)
    return withUnsafeMutablePointer(to: &files) { files in
      withUnsafeMutablePointer(to: &numbers) { numbers in
        withUnsafeMutablePointer(to: &list) { list in
          withUnsafeMutablePointer(to: &failure) { failure in
            switch answer(request) {
            case .files(let protos):
              grpc__reflection__v1__file_descriptor_response__init(files)
              let array = memory.array(of: ProtobufCBinaryData.self, count: protos.count)
              for (position, proto) in protos.enumerated() { array[position] = memory.binary(proto) }
              files.pointee.n_file_descriptor_proto = protos.count
              files.pointee.file_descriptor_proto = array
              response.message_response_case =
                GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE
              response.file_descriptor_response = files
            case .extensionNumbers(let type, let values):
              grpc__reflection__v1__extension_number_response__init(numbers)
              numbers.pointee.base_type_name = memory.string(type)
              let array = memory.array(of: Int32.self, count: values.count)
              for (position, value) in values.enumerated() { array[position] = value }
              numbers.pointee.n_extension_number = values.count
              numbers.pointee.extension_number = array
              response.message_response_case =
                GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE
              response.all_extension_numbers_response = numbers
            case .services(let names):
              grpc__reflection__v1__list_service_response__init(list)
              let pointers = memory.array(
                of: UnsafeMutablePointer<Grpc__Reflection__V1__ServiceResponse>?.self, count: names.count)
              for (position, name) in names.enumerated() {
                let entry = serviceEntries + position
                grpc__reflection__v1__service_response__init(entry)
                entry.pointee.name = memory.string(name)
                pointers[position] = entry
              }
              list.pointee.n_service = names.count
              list.pointee.service = pointers
              response.message_response_case =
                GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE
              response.list_services_response = list
            case .error(let code, let message):
              grpc__reflection__v1__error_response__init(failure)
              failure.pointee.error_code = Int32(code.rawValue)
              failure.pointee.error_message = memory.string(message)
              response.message_response_case =
                GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE
              response.error_response = failure
            }
            return withExtendedLifetime(memory) { ProtobufC.encode(&response) }
          }
        }
      }
    }
  }
}
