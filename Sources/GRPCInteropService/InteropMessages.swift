import CProtobufC
import GatewayProtos
import ProtobufCMessages

/// The parts of grpc.testing's messages the interop service reads and writes, as Swift values.
struct EchoStatus {
  var code: Int32
  var message: String
}

struct ResponseParameters {
  var size: Int
  var intervalMicroseconds: Int
  var compressed: Bool
}

struct SimpleRequest {
  var responseSize: Int
  var responseCompressed: Bool
  var expectCompressed: Bool
  var responseStatus: EchoStatus?

  init?(_ bytes: [UInt8]) {
    guard
      let request = ProtobufC.decode(
        bytes, grpc__testing__simple_request__descriptor_ptr(), as: Grpc__Testing__SimpleRequest.self)
    else { return nil }
    defer { ProtobufC.free(request) }
    responseSize = Int(request.pointee.response_size)
    responseCompressed = request.pointee.response_compressed.map { $0.pointee.value != 0 } ?? false
    expectCompressed = request.pointee.expect_compressed.map { $0.pointee.value != 0 } ?? false
    responseStatus = request.pointee.response_status.map(echoStatus)
  }
}

struct StreamingOutputCallRequest {
  var parameters: [ResponseParameters]
  var responseStatus: EchoStatus?

  init?(_ bytes: [UInt8]) {
    guard
      let request = ProtobufC.decode(
        bytes, grpc__testing__streaming_output_call_request__descriptor_ptr(),
        as: Grpc__Testing__StreamingOutputCallRequest.self)
    else { return nil }
    defer { ProtobufC.free(request) }
    parameters = (0..<request.pointee.n_response_parameters).map { index in
      let parameter = request.pointee.response_parameters[index]!.pointee
      return ResponseParameters(
        size: Int(parameter.size), intervalMicroseconds: Int(parameter.interval_us),
        compressed: parameter.compressed.map { $0.pointee.value != 0 } ?? false)
    }
    responseStatus = request.pointee.response_status.map(echoStatus)
  }
}

struct StreamingInputCallRequest {
  var payloadSize: Int
  var expectCompressed: Bool

  init?(_ bytes: [UInt8]) {
    guard
      let request = ProtobufC.decode(
        bytes, grpc__testing__streaming_input_call_request__descriptor_ptr(),
        as: Grpc__Testing__StreamingInputCallRequest.self)
    else { return nil }
    defer { ProtobufC.free(request) }
    payloadSize = request.pointee.payload.map { $0.pointee.body.len } ?? 0
    expectCompressed = request.pointee.expect_compressed.map { $0.pointee.value != 0 } ?? false
  }
}

private func echoStatus(_ status: UnsafeMutablePointer<Grpc__Testing__EchoStatus>) -> EchoStatus {
  EchoStatus(code: status.pointee.code, message: status.pointee.message.map { String(cString: $0) } ?? "")
}

enum InteropEncoding {
  static let empty: [UInt8] = []

  /// A SimpleResponse whose payload is `size` zero bytes.
  static func simpleResponse(payloadSize: Int) -> [UInt8] {
    withPayload(size: payloadSize) { payload in
      var response = Grpc__Testing__SimpleResponse()
      grpc__testing__simple_response__init(&response)
      response.payload = payload
      return ProtobufC.encode(&response)
    }
  }

  /// A StreamingOutputCallResponse whose payload is `size` zero bytes.
  static func streamingOutputResponse(payloadSize: Int) -> [UInt8] {
    withPayload(size: payloadSize) { payload in
      var response = Grpc__Testing__StreamingOutputCallResponse()
      grpc__testing__streaming_output_call_response__init(&response)
      response.payload = payload
      return ProtobufC.encode(&response)
    }
  }

  static func streamingInputResponse(aggregatedSize: Int) -> [UInt8] {
    var response = Grpc__Testing__StreamingInputCallResponse()
    grpc__testing__streaming_input_call_response__init(&response)
    response.aggregated_payload_size = Int32(clamping: aggregatedSize)
    return ProtobufC.encode(&response)
  }

  private static func withPayload(
    size: Int, _ body: (UnsafeMutablePointer<Grpc__Testing__Payload>) -> [UInt8]
  ) -> [UInt8] {
    let memory = CAllocations()
    var payload = Grpc__Testing__Payload()
    grpc__testing__payload__init(&payload)
    payload.type = GRPC__TESTING__PAYLOAD_TYPE__COMPRESSABLE
    payload.body = memory.binary([UInt8](repeating: 0, count: max(size, 0)))
    return withExtendedLifetime(memory) { withUnsafeMutablePointer(to: &payload) { body($0) } }
  }
}
