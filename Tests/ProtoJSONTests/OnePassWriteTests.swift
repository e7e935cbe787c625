import Testing

@testable import ProtoJSON

/// ProtoToJSON writes a message whose fields come in schema order in one pass as it reads them,
/// and gathers the occurrences first otherwise. Both ways must give the same JSON, or the same
/// error, for any bytes: the canonical goldens, their fields reversed, and a few hundred
/// mutations of each.
@Suite struct OnePassWriteTests {
  static func converters(for type: String) -> (onePass: ProtoToJSON, gathering: ProtoToJSON) {
    let schema = CanonicalFixture.codec(for: type).schema
    return (ProtoToJSON(schema: schema), ProtoToJSON(schema: schema, writesInOnePass: false))
  }

  /// The JSON, or the error's text.
  static func outcome(_ converter: ProtoToJSON, _ bytes: [UInt8], _ type: String) -> String {
    do {
      return String(decoding: try converter.json(from: bytes, typeName: type), as: UTF8.self)
    } catch {
      return "error: \(error)"
    }
  }

  /// The message's top-level fields in the opposite order.
  static func reversed(_ bytes: [UInt8]) -> [UInt8] {
    var reader = ProtoWireReader(bytes, range: 0..<bytes.count)
    var starts: [Int] = []
    while let field = try? reader.next() { starts.append(field.position) }
    let ends = Array(starts.dropFirst()) + [bytes.count]
    return zip(starts, ends).reversed().flatMap { bytes[$0.0..<$0.1] }
  }

  @Test func serializedMessagesTakeTheOnePassWay() throws {
    // Otherwise the comparisons below would hold the general way to itself. A map is written
    // from gathered entries; the two goldens with one set go the general way.
    let withMaps: Set = ["chat_request", "maps"]
    for golden in CanonicalJSONGoldens.printed {
      let converter = Self.converters(for: golden.type).onePass
      let message = try #require(converter.schema.message(golden.type))
      let bytes = CanonicalFixture.bytes(hex: golden.wire)
      #expect(
        converter.takesOnePass(message, bytes: bytes, range: 0..<bytes.count) == !withMaps.contains(golden.name),
        "\(golden.name)")
    }
  }

  @Test func bothWaysWriteTheSameForGoldensReversedAndMutated() {
    var generator = CanonicalJSONFuzzTests.Generator()
    var onePassCount = 0
    var compared = 0
    for golden in CanonicalJSONGoldens.printed {
      let (onePass, gathering) = Self.converters(for: golden.type)
      let bytes = CanonicalFixture.bytes(hex: golden.wire)
      let inputs =
        [bytes, Self.reversed(bytes)]
        + CanonicalJSONFuzzTests.mutations(of: bytes, count: 300, generator: &generator)
      for input in inputs {
        let expected = Self.outcome(gathering, input, golden.type)
        #expect(Self.outcome(onePass, input, golden.type) == expected, "\(golden.name): \(CanonicalFixture.hex(input))")
        if let message = onePass.schema.message(golden.type),
          onePass.takesOnePass(message, bytes: input, range: 0..<input.count)
        {
          onePassCount += 1
        }
        compared += 1
      }
    }
    // Both kinds among the inputs: mutations keep some orders and break others.
    #expect(onePassCount > compared / 10 && onePassCount < compared)
  }

  @Test func aRepeatedFieldsOccurrencesTogetherAndPackedStayOneArray() {
    // stop_token_ids (35) packed, then two unpacked occurrences; a oneof's two members in
    // schema order (stop_string 13, then stop_strings 14: the last wins); max_tokens (7) twice.
    var list = ProtoWireWriter()
    list.lengthDelimited(1, Array("y".utf8))
    var writer = ProtoWireWriter()
    writer.lengthDelimited(1, Array("m".utf8))
    writer.varintField(7, 3)
    writer.lengthDelimited(13, Array("x".utf8))
    writer.lengthDelimited(14, list.bytes)
    writer.lengthDelimited(35, [1, 2])
    writer.varintField(35, 3)
    writer.varintField(35, 4)
    let type = "vllmgateway.v1.ChatCompletionRequest"
    let (onePass, gathering) = Self.converters(for: type)
    let json = Self.outcome(onePass, writer.bytes, type)
    #expect(json == #"{"model":"m","max_tokens":3,"stop":["y"],"stop_token_ids":[1,2,3,4]}"#)
    #expect(json == Self.outcome(gathering, writer.bytes, type))
    // Without the oneof's second member the one pass writes it.
    var ordered = ProtoWireWriter()
    ordered.lengthDelimited(1, Array("m".utf8))
    ordered.lengthDelimited(35, [1, 2])
    ordered.varintField(35, 3)
    let message = onePass.schema.message(type)!
    #expect(onePass.takesOnePass(message, bytes: ordered.bytes, range: 0..<ordered.bytes.count))
    #expect(Self.outcome(onePass, ordered.bytes, type) == #"{"model":"m","stop_token_ids":[1,2,3]}"#)
  }

  @Test func overridesSkipTheirKeysEitherWay() throws {
    var writer = ProtoWireWriter()
    writer.lengthDelimited(1, Array("m".utf8))
    writer.varintField(7, 3)
    let type = "vllmgateway.v1.ChatCompletionRequest"
    let (onePass, gathering) = Self.converters(for: type)
    let message = try #require(onePass.schema.message(type))
    let overrides = [(key: "max_tokens", json: "5"), (key: "stream", json: "true")]
    let one = try onePass.json(from: writer.bytes, message: message, overrides: overrides)
    let general = try gathering.json(from: writer.bytes, message: message, overrides: overrides)
    #expect(String(decoding: one, as: UTF8.self) == #"{"model":"m","max_tokens":5,"stream":true}"#)
    #expect(one == general)
  }
}
