import Testing

@testable import ProtoJSON

/// A key order only changes where the translator compares keys first: whatever the order says,
/// known or unknown keys, right or wrong, the protobuf written is the one the schema's own order
/// gives.
@Suite struct ProducerKeyOrderTests {
  static let plain = JSONToProto(schema: .bundled)

  /// For every message: keys it lacks first, then its fields in their order; or its fields
  /// reversed, with keys it lacks between them. Oneof names and member names are both keys.
  static let orders: [(name: String, keyOrders: [String: [String]])] = [
    ("unknown keys first", keyOrders { ["metrics", "audio", "routed_experts"] + $0 }),
    ("reversed, unknown keys between", keyOrders { $0.reversed().flatMap { [$0, "x_" + $0] } }),
  ]

  static func keyOrders(_ arrange: ([String]) -> [String]) -> [String: [String]] {
    Schema.bundled.messages.mapValues { message in
      arrange(message.fields.map(\.name) + message.oneofs.map(\.name))
    }
  }

  static func translations(_ json: [UInt8], as type: String) throws -> (plain: [UInt8], ordered: [[UInt8]]) {
    let plain = try Self.plain.proto(from: json, typeName: type)
    let ordered = try orders.map { order in
      try JSONToProto(schema: Schema.bundled.orderingKeys(as: order.keyOrders)).proto(from: json, typeName: type)
    }
    return (plain, ordered)
  }

  @Test(arguments: RecordedExchangeTests.exchanges.filter { $0.status == 200 })
  func recordedRepliesTranslateTheSameInAnyKeyOrder(recording: Recording) throws {
    let types = try #require(RecordedExchangeTests.types(for: recording.path))
    let bodies: [(json: [UInt8], type: String)] =
      recording.isEventStream
      ? try recording.eventData.filter { !$0.starts(with: Array("{\"error\"".utf8)) }.map {
        ($0, try #require(types.chunk))
      }
      : [(recording.responseBody, types.response)]
    // A stream may hold only an error event, or none (a raw chunked capture); a body, a reply.
    #expect(recording.isEventStream || !bodies[0].json.isEmpty)
    for body in bodies {
      let (plain, ordered) = try Self.translations(body.json, as: body.type)
      for (index, bytes) in ordered.enumerated() {
        #expect(bytes == plain, "\(recording.name), \(Self.orders[index].name)")
      }
    }
  }

  /// Keys the order names and the message lacks: a null is dropped, anything else is kept in
  /// extra_fields, repeated or not, escaped or not, as an unknown key always was.
  @Test func keysTheMessageLacksAreKeptOrDroppedAsBefore() throws {
    let type = "vllmgateway.v1.ChatCompletion"
    let json = Array(
      (#"{"metrics":{"ttft":0.5},"id":"a","audio":null,"routed_experts":[1,2],"\u0069d":"b","#
        + #""choices":[],"metrics":null,"x_model":"m","model":"sim"}"#).utf8)
    let (plain, ordered) = try Self.translations(json, as: type)
    for bytes in ordered { #expect(bytes == plain) }
    let back = String(decoding: try ProtoToJSON(schema: .bundled).json(from: plain, typeName: type), as: UTF8.self)
    #expect(back.contains(#""metrics":{"ttft":0.5}"#))
    #expect(back.contains(#""routed_experts":[1,2]"#))
    #expect(back.contains(#""x_model":"m""#))
    #expect(back.contains(#""id":"b""#))
    #expect(!back.contains("audio"))
  }

  /// Keys to pass over are only compared in place: a lookup does not know them.
  @Test func aKeyTheMessageLacksIsNotFoundByLookup() throws {
    let ordered = Schema.bundled.orderingKeys(as: Self.orders[1].keyOrders)
    let message = try #require(ordered.message("vllmgateway.v1.ChatCompletion"))
    let plainMessage = try #require(Schema.bundled.message("vllmgateway.v1.ChatCompletion"))
    #expect(message.target(forKey: Array("x_model".utf8)[...]) == nil)
    #expect(message.target(forKey: Array("metrics".utf8)[...]) == nil)
    guard case .field(let index) = message.target(forKey: Array("model".utf8)[...]),
      case .field(let plainIndex) = plainMessage.target(forKey: Array("model".utf8)[...])
    else {
      Issue.record("model is a field")
      return
    }
    #expect(index == plainIndex)
    #expect(message.keyPatterns.count == plainMessage.keyPatterns.count * 2)
  }
}
