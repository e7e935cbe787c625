import Testing

@testable import ProtoJSON

/// Replies translated by the shape they share (ReplyShapes, ReplyTemplate) are byte for byte what
/// the general path writes, errors included: every recorded reply, replies of the same shape with
/// other values, every one-byte change of a chat reply, and the shapes that must not be learnt.
@Suite struct ReplyTemplateTests {
  static let toProto = JSONToProto(schema: .bundled)
  static let completion = toProto.schema.message("vllmgateway.v1.ChatCompletion")!
  /// What the gateway's output holds before a reply: the gRPC frame's five bytes.
  static let prefix: [UInt8] = [0, 0, 0, 0, 0]

  /// A chat reply as vLLM 0.32 sends one (tests/fixtures/vllm-recordings/chat_nonstream.http).
  static func reply(
    id: String = "chatcmpl-86e24b3f5efaae84", created: String = "1795562984", content: String = "ar ra quick",
    finish: String = "length", tokens: (String, String, String) = ("65", "77", "12")
  ) -> [UInt8] {
    Array(
      (#"{"id":"\#(id)","object":"chat.completion","created":\#(created),"model":"tiny-llama","#
        + #""choices":[{"index":0,"message":{"role":"assistant","content":"\#(content)","#
        + #""refusal":null,"annotations":null,"audio":null,"function_call":null,"reasoning":null},"logprobs":null,"#
        + #""finish_reason":"\#(finish)","stop_reason":null,"token_ids":null,"routed_experts":null}],"#
        + #""service_tier":null,"system_fingerprint":"vllm-0.32.0-768d6f53","usage":{"prompt_tokens":\#(tokens.0),"#
        + #""total_tokens":\#(tokens.1),"completion_tokens":\#(tokens.2),"prompt_tokens_details":null,"#
        + #""completion_tokens_details":null},"prompt_logprobs":null,"prompt_token_ids":null,"prompt_text":null,"#
        + #""kv_transfer_params":null,"ec_transfer_params":null,"metrics":null}"#).utf8)
  }

  /// The protobuf, or the error's text.
  static func alone(_ json: [UInt8], _ message: MessageSchema) -> String {
    do {
      return "\(try toProto.proto(from: json, message: message))"
    } catch {
      return "error: \(error)"
    }
  }

  static func shaped(_ shapes: ReplyShapes, _ json: [UInt8], _ message: MessageSchema) -> String {
    var output = prefix
    do {
      try toProto.append(from: json, message: message, to: &output, shapes: shapes)
      #expect(output.starts(with: prefix))
      return "\(Array(output.dropFirst(prefix.count)))"
    } catch {
      return "error: \(error)"
    }
  }

  /// Whether `template` writes `json` (after the frame's bytes) as the general path does.
  static func fits(_ template: ReplyTemplate, _ json: [UInt8], _ message: MessageSchema) -> Bool {
    var output = prefix
    guard template.write(json, to: &output) else { return false }
    #expect("\(Array(output.dropFirst(prefix.count)))" == alone(json, message))
    return true
  }

  /// Where the template wrote a watched top-level message field: the index of its tag in the
  /// output, after whatever the output held; none the first time (the general way writes it and
  /// the shape is learnt), none for a field the reply does not hold, and none when a shape holds
  /// the field twice (a reader of one occurrence would miss what the other says).
  /// A count past an int32 field's range is held to it, the general way and by the template:
  /// wrapped, 2^63 - 808 read as -808 and 2^32 + 5 as 5.
  @Test func integersPastAFieldsRangeAreHeldToIt() throws {
    let shapes = ReplyShapes()
    let usage = try #require(Self.toProto.schema.message("vllmgateway.v1.Usage"))
    let usageField = try #require(Self.completion.fields.first { $0.name == "usage" })
    for (tokens, held) in [
      (("9223372036854775000", "4294967301", "-9223372036854775000"), (Int32.max, Int32.max, Int32.min)),
      (("1e300", "12", "7"), (Int32.max, 12, 7)),
    ] {
      let json = Self.reply(tokens: tokens)
      let alone = try Self.toProto.proto(from: json, message: Self.completion)
      var reader = ProtoWireReader(alone)
      var counts: [Int32: Int64] = [:]
      while let field = try reader.next() {
        guard field.number == usageField.number else { continue }
        var inner = ProtoWireReader(alone, range: field.range)
        while let count = try inner.next() {
          counts[count.number] = Int64(bitPattern: count.scalar)
        }
      }
      let numbers = ["prompt_tokens", "total_tokens", "completion_tokens"].map { name in
        usage.fields.first { $0.name == name }!.number
      }
      #expect(counts[numbers[0]] == Int64(held.0))
      #expect(counts[numbers[1]] == Int64(held.1))
      #expect(counts[numbers[2]] == Int64(held.2))
      // The same bytes by the reply's shape, learnt at the first and used at the second.
      #expect(Self.shaped(shapes, json, Self.completion) == "\(alone)")
      #expect(Self.shaped(shapes, json, Self.completion) == "\(alone)")
    }
  }

  @Test func aWatchedFieldIsFoundWhereTheTemplateWroteIt() throws {
    let usage = try #require(Self.completion.fieldIndex(named: "usage").map { Self.completion.fields[$0] })
    let choices = try #require(Self.completion.fieldIndex(named: "choices").map { Self.completion.fields[$0] })
    let shapes = ReplyShapes()
    var output = Self.prefix
    #expect(
      try Self.toProto.append(
        from: Self.reply(), message: Self.completion, to: &output, shapes: shapes, watching: usage.number) == nil)
    for tokens in [("65", "77", "12"), ("1", "2", "1"), ("300", "600", "300")] {
      var output = Self.prefix
      let json = Self.reply(
        content: "a longer answer than the first " + String(repeating: "x", count: 200), tokens: tokens)
      let at = try #require(
        try Self.toProto.append(
          from: json, message: Self.completion, to: &output, shapes: shapes, watching: usage.number))
      let written = Array(output[at...])
      var reader = ProtoWireReader(written)
      let field = try #require(try reader.next())
      #expect(field.number == usage.number && field.wireType == .lengthDelimited)
      let usageJSON = #"{"prompt_tokens":\#(tokens.0),"total_tokens":\#(tokens.1),"completion_tokens":\#(tokens.2)}"#
      let usageMessage = try #require(Self.toProto.schema.message(of: usage))
      #expect(
        Array(written[field.range]) == (try Self.toProto.proto(from: Array(usageJSON.utf8), message: usageMessage)))
      // Written the same as without watching.
      var unwatched = Self.prefix
      try Self.toProto.append(from: json, message: Self.completion, to: &unwatched, shapes: shapes)
      #expect(unwatched == output)
    }
    // The choices field is repeated: a shape with one choice holds it once, so it is found too;
    // a field number the reply does not hold is not.
    var other = Self.prefix
    #expect(
      try Self.toProto.append(
        from: Self.reply(), message: Self.completion, to: &other, shapes: shapes, watching: choices.number) != nil)
    #expect(
      try Self.toProto.append(from: Self.reply(), message: Self.completion, to: &other, shapes: shapes, watching: 999)
        == nil)
  }

  @Test func aFieldATemplateWritesTwiceIsNotFound() throws {
    let twice = Array(
      (#"{"id":"a","choices":[{"index":0,"message":{"role":"assistant","content":"x"}},"#
        + #"{"index":1,"message":{"role":"assistant","content":"y"}}]}"#).utf8)
    let choices = try #require(Self.completion.fieldIndex(named: "choices").map { Self.completion.fields[$0] })
    let shapes = ReplyShapes()
    var output = Self.prefix
    try Self.toProto.append(from: twice, message: Self.completion, to: &output, shapes: shapes)
    #expect(shapes.hasShape)
    output = Self.prefix
    #expect(
      try Self.toProto.append(
        from: twice, message: Self.completion, to: &output, shapes: shapes, watching: choices.number) == nil)
  }

  @Test func recordedRepliesTranslateTheSameByTheirShape() throws {
    var fitted: Set<String> = []
    for recording in RecordedExchangeTests.exchanges where recording.status == 200 && !recording.isEventStream {
      let type = try #require(RecordedExchangeTests.types(for: recording.path)?.response)
      let message = try #require(Self.toProto.schema.message(type))
      let shapes = ReplyShapes()
      // The first learns the shape, the second is written by it.
      for _ in 0..<2 {
        #expect(Self.shaped(shapes, recording.responseBody, message) == Self.alone(recording.responseBody, message))
      }
      if let template = shapes.template, Self.fits(template, recording.responseBody, message) {
        fitted.insert(recording.path)
      }
    }
    // Chat and completion replies have a shape; embeddings' floats and the Responses API's do not.
    #expect(fitted.isSuperset(of: ["/v1/chat/completions", "/v1/completions"]), "\(fitted)")
  }

  @Test func repliesOfTheSameShapeWithOtherValuesFit() throws {
    let shapes = ReplyShapes()
    _ = Self.shaped(shapes, Self.reply(), Self.completion)
    let template = try #require(shapes.template)
    let others = [
      Self.reply(id: "x", created: "0", content: "", finish: "stop", tokens: ("0", "1", "-2")),
      // Long enough for the nested messages' lengths to take two bytes.
      Self.reply(content: String(repeating: "fox é 🦊 ", count: 40), tokens: ("123456789012345", "7", "8")),
      Self.reply(id: String(repeating: "a", count: 300)),
      // Three length bytes: the choice and its message move their content up by two.
      Self.reply(content: String(repeating: "long ", count: 4000)),
    ]
    for other in others {
      #expect(Self.fits(template, other, Self.completion))
      #expect(Self.shaped(shapes, other, Self.completion) == Self.alone(other, Self.completion))
    }
  }

  @Test func repliesOfAnotherShapeAreTranslatedTheGeneralWay() throws {
    let shapes = ReplyShapes()
    _ = Self.shaped(shapes, Self.reply(), Self.completion)
    let template = try #require(shapes.template)
    let reply = String(decoding: Self.reply(), as: UTF8.self)
    let misfits = [
      Self.reply(content: #"a \"quoted\" word"#),
      Self.reply(content: "a\ttab"),
      Self.reply(created: "1795562984.5"),
      Self.reply(created: "17955629840000000000"),
      Self.reply(created: "\"1795562984\""),
      Self.reply(tokens: ("65", "null", "12")),
      Self.reply(tokens: ("065", "77", "12")),
      Array(reply.replacingOccurrences(of: #""refusal":null"#, with: #""refusal":"no""#).utf8),
      Array(reply.replacingOccurrences(of: #""metrics":null"#, with: #""metrics":{"a":1}"#).utf8),
      Array(reply.replacingOccurrences(of: #""audio":null,"#, with: "").utf8),
      Array(reply.replacingOccurrences(of: "}]", with: #"},{"index":1,"message":{}}]"#).utf8),
      Array(reply.replacingOccurrences(of: #"{"id""#, with: #"{ "id""#).utf8),
      Array((reply + " ").utf8),
      Array((reply + "{}").utf8),
      Array(reply.dropLast().utf8),
      Array(reply.replacingOccurrences(of: "ar ra quick", with: "ar ra quick\u{1F}").utf8),
    ]
    for misfit in misfits {
      #expect(!Self.fits(template, misfit, Self.completion), "\(String(decoding: misfit, as: UTF8.self))")
      #expect(Self.shaped(shapes, misfit, Self.completion) == Self.alone(misfit, Self.completion))
    }
  }

  @Test func everyOneByteChangeOfAReplyTranslatesTheSame() throws {
    let original = Self.reply()
    let shapes = ReplyShapes()
    _ = Self.shaped(shapes, original, Self.completion)
    let template = try #require(shapes.template)
    var fitting = 0
    for position in original.indices {
      for byte: UInt8 in [0x00, 0x09, 0x20, 0x22, 0x2C, 0x2E, 0x30, 0x39, 0x3A, 0x5C, 0x5D, 0x61, 0x6E, 0x7D, 0xC3] {
        var changed = original
        changed[position] = byte
        let expected = Self.alone(changed, Self.completion)
        var output = Self.prefix
        if template.write(changed, to: &output) {
          fitting += 1
          #expect("\(Array(output.dropFirst(Self.prefix.count)))" == expected, "byte \(position) as \(byte)")
        }
        // Through the cache too, whose template may be learnt anew from a change.
        let learning = ReplyShapes()
        _ = Self.shaped(learning, original, Self.completion)
        #expect(Self.shaped(learning, changed, Self.completion) == expected, "byte \(position) as \(byte)")
      }
    }
    // Changes inside the values still fit.
    #expect(fitting > 100)
  }

  @Test func shapesWithValuesThePlainPathDoesNotWriteAreNotLearnt() throws {
    let embeddings = try #require(Self.toProto.schema.message("vllmgateway.v1.EmbeddingResponse"))
    let json = Array(
      #"{"id":"embd-1","object":"list","created":1,"model":"m","data":[{"index":0,"object":"embedding","embedding":[0.5,1.25]}],"usage":{"prompt_tokens":2,"total_tokens":2}}"#
        .utf8)
    #expect(ReplyTemplateLearner.learn(json, as: embeddings, in: Self.toProto.schema) == nil)
    let reply = String(decoding: Self.reply(), as: UTF8.self)
    let unlearnt = [
      Self.reply(content: #"\u0041"#),
      Array(reply.replacingOccurrences(of: #""metrics":null"#, with: #""metrics":{"a":1}"#).utf8),
      Array(reply.replacingOccurrences(of: #""metrics":null"#, with: #""unknown_key":true"#).utf8),
      Array(reply.replacingOccurrences(of: #""id""#, with: #""\u0069d""#).utf8),
      Array(reply.replacingOccurrences(of: "}]", with: "},null]").utf8),
    ]
    for json in unlearnt {
      #expect(
        ReplyTemplateLearner.learn(json, as: Self.completion, in: Self.toProto.schema) == nil,
        "\(String(decoding: json, as: UTF8.self))")
    }
  }

  @Test func learningAfterMisfitsBacksOff() {
    let shapes = ReplyShapes()
    var learnt: [Int] = []
    for misfit in 0..<200 where shapes.shouldLearn() { learnt.append(misfit) }
    // The gaps between learnings double, up to one learning in 64 misfits.
    #expect(learnt == [0, 1, 3, 7, 15, 31, 63, 127, 191])
  }
}
