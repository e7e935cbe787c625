import Foundation
import ProtoJSON
import Testing

@testable import Gateway

/// A request's model named `vllm/<model>` reaches vLLM as `<model>`; any other name as it is.
@Suite struct UpstreamRequestBodyTests {
  /// A ChatCompletionRequest with these models (field 1) and max_tokens 16 (field 7, a varint).
  private func request(models: [String]) -> [UInt8] {
    var writer = ProtoWireWriter()
    for model in models { writer.lengthDelimited(1, Array(model.utf8)) }
    return writer.bytes + [7 << 3, 16]
  }

  @Test func onlyAModelNamedUnderVLLMLosesItsPrefix() throws {
    #expect(try UpstreamRequestBody.prefixedModel(in: request(models: ["vllm/llama-3.1-8b"])) == "llama-3.1-8b")
    #expect(try UpstreamRequestBody.prefixedModel(in: request(models: ["vllm/"])) == "")
    for bare in ["llama", "vllm", "vlm/x", "VLLM/x", "", "xvllm/x"] {
      #expect(try UpstreamRequestBody.prefixedModel(in: request(models: [bare])) == nil, "\(bare)")
    }
    #expect(try UpstreamRequestBody.prefixedModel(in: request(models: [])) == nil)
    // The last occurrence is the field's value, as a protobuf parser takes it.
    #expect(try UpstreamRequestBody.prefixedModel(in: request(models: ["vllm/a", "b"])) == nil)
    #expect(try UpstreamRequestBody.prefixedModel(in: request(models: ["a", "vllm/b"])) == "b")
    #expect(throws: (any Error).self) { try UpstreamRequestBody.prefixedModel(in: [0x0A, 0x09, 0x76]) }
  }

  @Test func theBodyCarriesTheBareModel() throws {
    let operation = try #require(VLLMService.operations.first { $0.rpc.hasSuffix("/CreateChatCompletion") })
    let body = try UpstreamRequestBody.json(
      from: request(models: ["vllm/llama"]), operation: operation, converter: ProtoToJSON(schema: .vllmOrdered),
      stream: false)
    // The bare name replaces the field as an override, after the message's own members.
    #expect(String(decoding: body, as: UTF8.self) == #"{"max_tokens":16,"model":"llama"}"#)
  }

  /// A ChatCompletionRequest with max_tokens (field 7) first on the wire, then these models.
  private func requestWithModelsLast(_ models: [String]) -> [UInt8] {
    var writer = ProtoWireWriter()
    for model in models { writer.lengthDelimited(1, Array(model.utf8)) }
    return [7 << 3, 16] + writer.bytes
  }

  private func object(_ body: [UInt8]) throws -> NSDictionary {
    try #require(try JSONSerialization.jsonObject(with: Data(body)) as? NSDictionary)
  }

  /// With the operation resolved, the model is cut out of the body as written, not found by a walk
  /// of the request first: the same JSON object either way, for every form of the field.
  @Test func theBodyWrittenFirstIsTheBodyTheWalkMakes() throws {
    let converter = ProtoToJSON(schema: .vllmOrdered)
    let unresolved = try #require(VLLMService.operations.first { $0.rpc.hasSuffix("/CreateChatCompletion") })
    let operation = unresolved.resolved(in: converter.schema)
    #expect(operation.modelIsFieldOne)
    let requests =
      [["vllm/llama"], ["llama"], [], ["vllm/"], [""], ["vllm/a", "b"], ["a", "vllm/b"], ["vllm"], ["vllm/vllm/x"]]
      .flatMap { [request(models: $0), requestWithModelsLast($0)] }
    for body in requests {
      for stream in [false, true] {
        let fast = try UpstreamRequestBody.json(
          from: body, operation: operation, converter: converter, stream: stream,
          requestMessage: operation.requestMessage)
        let walked = try UpstreamRequestBody.json(
          from: body, operation: unresolved, converter: converter, stream: stream)
        #expect(try object(fast) == object(walked), "\(String(decoding: fast, as: UTF8.self))")
      }
    }
    // A body out of schema order is written in schema order, model first: cut out as well.
    for body in [request(models: ["vllm/llama"]), requestWithModelsLast(["vllm/llama"])] {
      let written = try UpstreamRequestBody.json(
        from: body, operation: operation, converter: converter, stream: false,
        requestMessage: operation.requestMessage)
      #expect(String(decoding: written, as: UTF8.self) == #"{"model":"llama","max_tokens":16}"#)
    }
  }
}
