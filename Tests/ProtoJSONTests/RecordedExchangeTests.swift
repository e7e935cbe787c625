import Foundation
import Testing

@testable import ProtoJSON

/// Every request and response a real vLLM exchanged (tests/fixtures/vllm-recordings) survives
/// JSON → protobuf → JSON: typed where the .proto names a field, in extra_body or extra_fields
/// where it does not, nothing lost.
@Suite struct RecordedExchangeTests {
  static let schema = Schema.bundled
  static let toProto = JSONToProto(schema: schema)
  static let toJSON = ProtoToJSON(schema: schema)

  struct Types {
    let request: String
    let response: String
    let chunk: String?
  }

  static func types(for path: String) -> Types? {
    let package = "vllmgateway.v1."
    switch path {
    case "/v1/chat/completions":
      return Types(
        request: package + "ChatCompletionRequest", response: package + "ChatCompletion",
        chunk: package + "ChatCompletionChunk")
    case "/v1/completions":
      return Types(
        request: package + "CompletionRequest", response: package + "Completion", chunk: package + "Completion")
    case "/v1/responses":
      return Types(
        request: package + "ResponseRequest", response: package + "Response",
        chunk: package + "ResponseStreamEvent")
    case "/v1/embeddings":
      return Types(request: package + "EmbeddingRequest", response: package + "EmbeddingResponse", chunk: nil)
    case "/v1/rerank", "/rerank", "/v2/rerank":
      return Types(request: package + "RerankRequest", response: package + "RerankResponse", chunk: nil)
    case "/v1/score":
      return Types(request: package + "ScoreRequest", response: package + "ScoreResponse", chunk: nil)
    case "/v1/models":
      return Types(request: package + "ListModelsRequest", response: package + "ListModelsResponse", chunk: nil)
    default:
      return nil
    }
  }

  static func roundTrip(_ json: [UInt8], as type: String) throws -> [UInt8] {
    let proto = try toProto.proto(from: json, typeName: type)
    return try toJSON.json(from: proto, typeName: type)
  }

  static let exchanges: [Recording] = (try? Recording.all())?.filter { types(for: $0.path) != nil } ?? []

  @Test func thereAreRecordingsForEveryOperation() {
    let paths = Set(Self.exchanges.map(\.path))
    for path in [
      "/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/embeddings", "/v1/rerank", "/v1/models",
    ] {
      #expect(paths.contains(path), "no recording for \(path)")
    }
    #expect(Self.exchanges.count > 60)
  }

  @Test(arguments: exchanges.filter { $0.method == "POST" && $0.requestBody.isJSONObject })
  func requestSurvivesTheRoundTrip(recording: Recording) throws {
    let types = try #require(Self.types(for: recording.path))
    let back = try Self.roundTrip(recording.requestBody, as: types.request)
    let difference = JSONEquivalence.difference(original: recording.requestBody, roundTripped: back)
    #expect(difference == nil, "\(recording.name): \(difference ?? "")")
  }

  @Test(arguments: exchanges.filter { $0.status == 200 && !$0.isEventStream })
  func responseSurvivesTheRoundTrip(recording: Recording) throws {
    let types = try #require(Self.types(for: recording.path))
    let back = try Self.roundTrip(recording.responseBody, as: types.response)
    let difference = JSONEquivalence.difference(original: recording.responseBody, roundTripped: back)
    #expect(difference == nil, "\(recording.name): \(difference ?? "")")
  }

  @Test(arguments: exchanges.filter { $0.status == 200 && $0.isEventStream })
  func streamChunksSurviveTheRoundTrip(recording: Recording) throws {
    let types = try #require(Self.types(for: recording.path))
    let chunkType = try #require(types.chunk)
    for event in recording.eventData where !event.starts(with: Array("{\"error\"".utf8)) {
      let back = try Self.roundTrip(event, as: chunkType)
      let difference = JSONEquivalence.difference(original: event, roundTripped: back)
      #expect(difference == nil, "\(recording.name): \(difference ?? "")")
    }
  }
}

extension Recording: CustomTestStringConvertible {
  var testDescription: String { name }
}

extension [UInt8] {
  var isJSONObject: Bool {
    (try? JSONSerialization.jsonObject(with: Data(self))) is [String: Any]
  }
}

/// What vLLM sends that the .proto does not name: it must be a short, known list, so that typed
/// fields really carry the data and `extra_fields` only the rest.
@Suite struct PassthroughCoverageTests {
  @Test func responsesPutOnlyKnownLeftoversInExtraFields() throws {
    var found = Set<String>()
    for recording in RecordedExchangeTests.exchanges where recording.status == 200 {
      let types = try #require(RecordedExchangeTests.types(for: recording.path))
      let bodies: [([UInt8], String)] =
        recording.isEventStream
        ? recording.eventData.filter { !$0.starts(with: Array("{\"error\"".utf8)) }.map { ($0, types.chunk ?? "") }
        : [(recording.responseBody, types.response)]
      for (body, type) in bodies {
        let proto = try RecordedExchangeTests.toProto.proto(from: body, typeName: type)
        found.formUnion(try PassthroughKeys.collect(proto, typeName: type, schema: RecordedExchangeTests.schema))
      }
    }
    #expect(
      found == Self.expectedLeftovers,
      "unexpected: \(found.subtracting(Self.expectedLeftovers).sorted()), gone: \(Self.expectedLeftovers.subtracting(found).sorted())"
    )
  }

  /// Kept as JSON on purpose: vLLM's internal or rarely useful extras, and Responses fields that
  /// echo the request.
  static let expectedLeftovers: Set<String> = []
}
