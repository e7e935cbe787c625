import Testing

@testable import ProtoJSON

/// A request message's learnt shape (`RequestTemplate`) writes the JSON the general way writes,
/// byte for byte, for every message that fits it, and leaves every other one to the general way:
/// the canonical goldens and a few hundred mutations of each, chat requests of other sizes and
/// values, and the room a write needs growing past its first reservation.
@Suite struct RequestTemplateTests {
  static let chatType = "vllmgateway.v1.ChatCompletionRequest"
  static let converter = ProtoToJSON(schema: .bundled)
  static let general = ProtoToJSON(schema: .bundled, writesInOnePass: false)
  static var chat: MessageSchema { converter.schema.message(chatType)! }

  /// The JSON, or the error's text.
  static func outcome(
    _ converter: ProtoToJSON, _ bytes: [UInt8], _ message: MessageSchema, shapes: RequestShapes? = nil,
    overrides: [(key: String, json: String)] = []
  ) -> String {
    do {
      return String(
        decoding: try converter.json(from: bytes, message: message, overrides: overrides, shapes: shapes), as: UTF8.self
      )
    } catch {
      return "error: \(error)"
    }
  }

  /// Whether the template writes `bytes` (rather than leaving them to the general way).
  static func fits(_ template: RequestTemplate, _ bytes: [UInt8]) -> Bool {
    var writer = JSONWriter()
    writer.beginObject()
    return template.write(bytes, 0..<bytes.count, to: &writer)
  }

  /// A chat request: the model, `messages` as (role, text) pairs, then max_tokens.
  static func chatRequest(model: String = "sim-model", _ messages: [(String, String)], maxTokens: UInt64? = 16)
    -> [UInt8]
  {
    var writer = ProtoWireWriter()
    writer.lengthDelimited(1, Array(model.utf8))
    for (role, text) in messages {
      var message = ProtoWireWriter()
      message.lengthDelimited(1, Array(role.utf8))
      message.lengthDelimited(2, Array(text.utf8))
      writer.lengthDelimited(2, message.bytes)
    }
    if let maxTokens { writer.varintField(7, maxTokens) }
    return writer.bytes
  }

  @Test func goldensAndTheirMutationsWriteAsTheGeneralWay() throws {
    var generator = CanonicalJSONFuzzTests.Generator()
    var learnt: [String] = []
    var fitted = 0
    var compared = 0
    for golden in CanonicalJSONGoldens.printed {
      let schema = CanonicalFixture.codec(for: golden.type).schema
      let converter = ProtoToJSON(schema: schema)
      let gathering = ProtoToJSON(schema: schema, writesInOnePass: false)
      let message = try #require(schema.message(golden.type))
      let bytes = CanonicalFixture.bytes(hex: golden.wire)
      let shapes = RequestShapes(fixedFrom: bytes, as: message, in: schema)
      guard let template = shapes.template else { continue }
      learnt.append(golden.name)
      let inputs =
        [bytes, OnePassWriteTests.reversed(bytes)]
        + CanonicalJSONFuzzTests.mutations(of: bytes, count: 300, generator: &generator)
      for input in inputs {
        let expected = Self.outcome(gathering, input, message)
        #expect(
          Self.outcome(converter, input, message, shapes: shapes) == expected,
          "\(golden.name): \(CanonicalFixture.hex(input))")
        if Self.fits(template, input) { fitted += 1 }
        compared += 1
      }
    }
    // Every kind of scalar, optionals, oneofs and a nested reply have shapes; maps, packed
    // scalars, well-known types with JSON forms of their own and empty messages do not.
    for name in ["scalars", "scalars_special", "optionals_set", "choice_text_empty", "chat_chunk_final", "custom_name"]
    {
      #expect(learnt.contains(name), "\(name) has no shape")
    }
    for name in ["maps", "repeats", "well_known", "scalars_empty", "chat_request"] {
      #expect(!learnt.contains(name), "\(name) has a shape")
    }
    // Both kinds among the inputs: mutations keep some shapes and break others.
    #expect(fitted > compared / 20 && fitted < compared)
  }

  @Test func aChatShapeFitsAnyNumberOfMessagesAndAnyText() throws {
    let learntFrom = Self.chatRequest([("user", "Tell me a story about a fox.")])
    let shapes = RequestShapes(fixedFrom: learntFrom, as: Self.chat, in: Self.converter.schema)
    let template = try #require(shapes.template)
    let texts = [
      "", "a", "seven!!", "eight!!!", "Tell me a story about a fox.", "line one\nline two", "a \"quoted\" word",
      "back\\slash", "tab\there", "naïve café ☕", "control \u{01} byte", String(repeating: "long text ", count: 2_000),
    ]
    var requests: [[UInt8]] = []
    for text in texts {
      requests.append(Self.chatRequest([("user", text)]))
      requests.append(Self.chatRequest(model: "vllm/" + text, [("system", "Be brief."), ("user", text)]))
      requests.append(
        Self.chatRequest(
          (0..<40).map { ($0 % 2 == 0 ? "user" : "assistant", text + String($0)) }, maxTokens: UInt64.max))
    }
    // Many short messages before a long one: the long text no longer fits in the room the
    // write reserved first (the input's size and the runs once), and is written from a larger.
    requests.append(
      Self.chatRequest(Array(repeating: ("user", ""), count: 30) + [("user", String(repeating: "x", count: 5_000))]))
    for request in requests {
      #expect(Self.fits(template, request))
      #expect(
        Self.outcome(Self.converter, request, Self.chat, shapes: shapes)
          == Self.outcome(Self.general, request, Self.chat))
    }
    // Another shape: no max_tokens, a message with a name, the fields out of order.
    var named = ProtoWireWriter()
    named.lengthDelimited(1, Array("user".utf8))
    named.lengthDelimited(2, Array("hi".utf8))
    named.lengthDelimited(4, Array("ann".utf8))
    var withName = ProtoWireWriter()
    withName.lengthDelimited(1, Array("m".utf8))
    withName.lengthDelimited(2, named.bytes)
    withName.varintField(7, 3)
    let misfits = [
      Self.chatRequest([("user", "hi")], maxTokens: nil), withName.bytes,
      OnePassWriteTests.reversed(Self.chatRequest([("user", "hi")])), Self.chatRequest([]),
    ]
    for request in misfits {
      #expect(!Self.fits(template, request))
      #expect(
        Self.outcome(Self.converter, request, Self.chat, shapes: shapes)
          == Self.outcome(Self.general, request, Self.chat))
    }
  }

  @Test func integersBooleansAndFloatsWriteAsTheGeneralWay() throws {
    // logprobs (bool, 5), max_tokens (int32, 7: a negative one takes ten bytes), seed (int64,
    // 12), temperature (double, 16): written by the same functions either way.
    func request(logprobs: Bool, maxTokens: Int32, seed: Int64, temperature: Double) -> [UInt8] {
      var writer = ProtoWireWriter()
      writer.lengthDelimited(1, Array("m".utf8))
      writer.varintField(5, logprobs ? 1 : 0)
      writer.varintField(7, UInt64(bitPattern: Int64(maxTokens)))
      writer.varintField(12, UInt64(bitPattern: seed))
      writer.tag(16, .fixed64)
      writer.fixed64(temperature.bitPattern)
      return writer.bytes
    }
    let learntFrom = request(logprobs: true, maxTokens: 16, seed: 7, temperature: 0.5)
    let shapes = RequestShapes(fixedFrom: learntFrom, as: Self.chat, in: Self.converter.schema)
    let template = try #require(shapes.template)
    for temperature in [0, 0.2, 1, -3.5, 1e300, .infinity, .nan, 1e-30] {
      for (maxTokens, seed) in [(0, 0), (1, 1), (-1, -1), (Int32.max, Int64.max), (Int32.min, Int64.min), (100, 42)] {
        for logprobs in [true, false] {
          let bytes = request(logprobs: logprobs, maxTokens: maxTokens, seed: seed, temperature: temperature)
          #expect(Self.fits(template, bytes))
          #expect(
            Self.outcome(Self.converter, bytes, Self.chat, shapes: shapes)
              == Self.outcome(Self.general, bytes, Self.chat))
        }
      }
    }
  }

  @Test func repeatedStringsAndUnpackedIntegersRepeatTheirStep() throws {
    // stop_token_ids (35) unpacked, one varint a field; bad_words (44), strings.
    func request(tokens: [UInt64], words: [String]) -> [UInt8] {
      var writer = ProtoWireWriter()
      writer.lengthDelimited(1, Array("m".utf8))
      for token in tokens { writer.varintField(35, token) }
      for word in words { writer.lengthDelimited(44, Array(word.utf8)) }
      return writer.bytes
    }
    let shapes = RequestShapes(fixedFrom: request(tokens: [1], words: ["a"]), as: Self.chat, in: Self.converter.schema)
    let template = try #require(shapes.template)
    for count in [1, 2, 3, 50] {
      let bytes = request(tokens: (0..<count).map { UInt64($0 * 1000) }, words: (0..<count).map { "w\"\($0)" })
      #expect(Self.fits(template, bytes))
      #expect(
        Self.outcome(Self.converter, bytes, Self.chat, shapes: shapes) == Self.outcome(Self.general, bytes, Self.chat))
    }
    // Packed, the same integers are another shape.
    var packed = ProtoWireWriter()
    packed.lengthDelimited(1, Array("m".utf8))
    packed.lengthDelimited(35, [1, 2])
    packed.lengthDelimited(44, Array("a".utf8))
    #expect(!Self.fits(template, packed.bytes))
    #expect(
      Self.outcome(Self.converter, packed.bytes, Self.chat, shapes: shapes)
        == #"{"model":"m","stop_token_ids":[1,2],"bad_words":["a"]}"#)
  }

  @Test func aShapeIsLearntForTheOverridesItWasLearntWith() throws {
    let request = Self.chatRequest([("user", "hi")])
    let streaming = [(key: "stream", json: "true")]
    let shapes = RequestShapes()
    // The first request teaches the shape; the next ones are written by it.
    for _ in 0..<3 {
      #expect(
        Self.outcome(Self.converter, request, Self.chat, shapes: shapes, overrides: streaming)
          == #"{"model":"sim-model","messages":[{"role":"user","content":"hi"}],"max_tokens":16,"stream":true}"#)
    }
    let template = try #require(shapes.template)
    #expect(template.skipping == ["stream"])
    // Other overrides: the general way, the same JSON.
    #expect(
      Self.outcome(Self.converter, request, Self.chat, shapes: shapes)
        == Self.outcome(Self.general, request, Self.chat))
    // A field the caller overrides is not learnt.
    let overridden = [(key: "max_tokens", json: "5")]
    #expect(
      RequestTemplateLearner.learn(request, as: Self.chat, in: Self.converter.schema, skipping: ["max_tokens"]) == nil)
    #expect(
      Self.outcome(Self.converter, request, Self.chat, shapes: RequestShapes(), overrides: overridden)
        == #"{"model":"sim-model","messages":[{"role":"user","content":"hi"}],"max_tokens":5}"#)
  }

  @Test func learningAfterMisfitsBacksOffAndKeepsTheLastShape() throws {
    let shapes = RequestShapes()
    let first = Self.chatRequest([("user", "hi")])
    let second = Self.chatRequest([("user", "hi")], maxTokens: nil)
    _ = try Self.converter.json(from: first, message: Self.chat, shapes: shapes)
    let learnt = try #require(shapes.template)
    #expect(Self.fits(learnt, first) && !Self.fits(learnt, second))
    // The first misfit after a learning is learnt from: the second shape replaces the first.
    _ = try Self.converter.json(from: second, message: Self.chat, shapes: shapes)
    let relearnt = try #require(shapes.template)
    #expect(Self.fits(relearnt, second) && !Self.fits(relearnt, first))
  }
}
