import ProtoJSON
import Testing

@testable import Gateway

/// A unary call's usage is read from the reply's protobuf translation; it must be what vLLM's
/// JSON says (TokenUsage, which streams and the other calls still use).
@Suite struct ReplyUsageFieldsTests {
  private static func fields(_ responseType: String) -> ReplyUsageFields? {
    Schema.bundled.message("vllmgateway.v1." + responseType).flatMap { ReplyUsageFields(of: $0, in: .bundled) }
  }

  @Test func recordedAnswersGiveTheUsageTheirJSONSays() throws {
    let translator = JSONToProto(schema: .bundled)
    var withUsage = 0
    var paths: Set<String> = []
    for operation in VLLMService.operations where operation.kind == .unary {
      guard let fields = operation.resolved(in: .bundled).replyUsage else { continue }
      for answer in VLLMKeyOrderTests.answers where answer.path == operation.upstreamPath && !answer.isStream {
        for object in answer.objects {
          let reply = try translator.proto(from: object, typeName: operation.responseType)
          let usage = try #require(fields.read(reply, range: 0..<reply.count), "\(answer.file)")
          #expect(usage == TokenUsage(in: object), "\(answer.file)")
          if usage.prompt > 0 {
            withUsage += 1
            paths.insert(answer.path)
          }
        }
      }
    }
    // Chat, completions, Responses and embeddings answers were all recorded.
    #expect(paths.isSuperset(of: ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"]), "\(paths)")
    #expect(withUsage >= 10)
  }

  /// Where the reply's template wrote the usage field (the second reply of a shape on), its
  /// counts are read there and are what the JSON says; other replies are walked as before.
  @Test func recordedAnswersGiveTheirUsageWhereTheTemplateWroteIt() throws {
    let translator = JSONToProto(schema: .bundled)
    var foundByTemplate = 0
    for operation in VLLMService.operations where operation.kind == .unary {
      let resolved = operation.resolved(in: .bundled)
      guard let fields = resolved.replyUsage, let message = Schema.bundled.message(operation.responseType) else {
        continue
      }
      for answer in VLLMKeyOrderTests.answers where answer.path == operation.upstreamPath && !answer.isStream {
        for object in answer.objects {
          let shapes = ReplyShapes()
          for _ in 0..<2 {
            var output: [UInt8] = [0, 0, 0, 0, 0]
            let at = try translator.append(
              from: object, message: message, to: &output, shapes: shapes, watching: fields.usageNumber)
            let walked = try #require(fields.read(output, range: 5..<output.count), "\(answer.file)")
            guard let at else { continue }
            foundByTemplate += 1
            #expect(fields.read(output, usageAt: at) == walked, "\(answer.file)")
            #expect(walked == TokenUsage(in: object), "\(answer.file)")
          }
        }
      }
    }
    #expect(foundByTemplate >= 5)
  }

  @Test func aUsageTagThatIsNotThereReadsAsNothing() throws {
    let fields = try #require(Self.fields("ChatCompletion"))
    var reply = ProtoWireWriter()
    reply.lengthDelimited(1, Array("id".utf8))
    let bytes = reply.bytes
    #expect(fields.read(bytes, usageAt: 0) == nil)
    #expect(fields.read(bytes, usageAt: bytes.count) == nil)
    #expect(fields.read(bytes, usageAt: -1) == nil)
  }

  @Test func repliesThatCountTokens() {
    for type in ["ChatCompletion", "Completion", "Response", "EmbeddingResponse", "Transcription"] {
      #expect(Self.fields(type) != nil, "\(type)")
    }
    for type in ["ListModelsResponse", "Usage"] { #expect(Self.fields(type) == nil, "\(type)") }
  }

  /// A message written after other output (the call's buffer holds earlier frames), its usage
  /// given twice: merged as protobuf parsers merge a repeated message field.
  @Test func readsTheMessageAtItsRangeWithRepeatedUsageMerged() throws {
    let fields = try #require(Self.fields("ChatCompletion"))
    var usage = ProtoWireWriter()
    usage.tag(1, .varint)
    usage.varint(300)  // two bytes
    usage.tag(2, .varint)
    usage.varint(4)
    var laterUsage = ProtoWireWriter()
    laterUsage.tag(2, .varint)
    laterUsage.varint(9)
    var reply = ProtoWireWriter()
    reply.lengthDelimited(1, Array("chatcmpl-1".utf8))
    reply.tag(3, .varint)
    reply.varint(1_796_342_416)
    reply.lengthDelimited(6, usage.bytes)
    reply.tag(99, .fixed64)
    reply.fixed64(7)
    reply.lengthDelimited(6, laterUsage.bytes)
    let before: [UInt8] = [0, 0, 0, 0, 0xFF]
    let bytes = before + reply.bytes + [0xFF]
    #expect(
      fields.read(bytes, range: before.count..<(bytes.count - 1)) == TokenUsage(prompt: 300, completion: 9))
  }

  @Test func negativeCountsAreNone() throws {
    let fields = try #require(Self.fields("ChatCompletion"))
    var usage = ProtoWireWriter()
    usage.tag(1, .varint)
    usage.varint(UInt64(bitPattern: -5))  // ten bytes, as int32 -5 is written
    usage.tag(2, .varint)
    usage.varint(2)
    var reply = ProtoWireWriter()
    reply.lengthDelimited(6, usage.bytes)
    #expect(fields.read(reply.bytes, range: 0..<reply.bytes.count) == TokenUsage(prompt: 0, completion: 2))
  }

  @Test func bytesThatAreNotAMessageReadAsNothing() throws {
    let fields = try #require(Self.fields("ChatCompletion"))
    let cases: [[UInt8]] = [
      [0x32, 0x05, 0x08],  // usage's length runs past the end
      [0x32, 0x02, 0x08, 0x80],  // a count's varint runs past the usage
      [0x1A],  // a tag with no value
      [0x0B],  // a group
      [0x19, 0x01],  // fixed64 cut short
    ]
    for bytes in cases { #expect(fields.read(bytes, range: 0..<bytes.count) == nil, "\(bytes)") }
  }
}
