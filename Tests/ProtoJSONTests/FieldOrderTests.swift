import Testing

@testable import ProtoJSON

/// Protobuf lets a message's fields come in any order, a repeated field's elements with other
/// fields between them, a singular field more than once (the last wins) and several members of a
/// oneof (the last wins). The JSON written from such bytes is the JSON of the same message
/// written in order: serializers write fields in order, the translation groups them only when
/// they are not.
@Suite struct FieldOrderTests {
  static let toJSON = ProtoToJSON(schema: .bundled)
  static let canonical = CanonicalJSON(schema: .bundled)
  static let request = "vllmgateway.v1.ChatCompletionRequest"

  static func message(_ role: String, _ text: String) -> [UInt8] {
    var message = ProtoWireWriter()
    message.lengthDelimited(1, Array(role.utf8))
    message.lengthDelimited(2, Array(text.utf8))
    return message.bytes
  }

  /// The request's fields as (tag, value) parts, each written as protobuf in the order given.
  enum Part {
    case model(String)
    case message([UInt8])
    case maxTokens(UInt64)
    case stopString(String)
    case stopStrings([String])
  }

  static func bytes(_ parts: [Part]) -> [UInt8] {
    var writer = ProtoWireWriter()
    for part in parts {
      switch part {
      case .model(let name): writer.lengthDelimited(1, Array(name.utf8))
      case .message(let message): writer.lengthDelimited(2, message)
      case .maxTokens(let count): writer.varintField(7, count)
      case .stopString(let text): writer.lengthDelimited(13, Array(text.utf8))
      case .stopStrings(let texts):
        var list = ProtoWireWriter()
        for text in texts { list.lengthDelimited(1, Array(text.utf8)) }
        writer.lengthDelimited(14, list.bytes)
      }
    }
    return writer.bytes
  }

  static func bothJSON(_ bytes: [UInt8]) throws -> (gateway: String, canonical: String) {
    let gateway = try toJSON.json(from: bytes, typeName: request)
    let canonical = try canonical.json(fromMessage: bytes, type: request)
    return (String(decoding: gateway, as: UTF8.self), String(decoding: canonical, as: UTF8.self))
  }

  @Test func fieldsInReverseAndInterleavedReadAsTheOrderedMessage() throws {
    let first = Self.message("system", "Be brief.")
    let second = Self.message("user", "Hi")
    let third = Self.message("assistant", "Hello")
    let ordered = Self.bytes([
      .model("m"), .message(first), .message(second), .message(third), .maxTokens(9), .stopString("end"),
    ])
    // The same fields backwards, the messages split by other fields, and fields written twice
    // (a singular one's last value wins, as does a oneof's last member): the same message.
    let scrambled = Self.bytes([
      .stopStrings(["a", "b"]), .maxTokens(3), .message(first), .model("other"), .message(second),
      .stopString("end"), .maxTokens(9), .message(third), .model("m"),
    ])
    let expected = try Self.bothJSON(ordered)
    let found = try Self.bothJSON(scrambled)
    #expect(found.gateway == expected.gateway)
    #expect(found.canonical == expected.canonical)
    #expect(
      expected.gateway
        == #"{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},"#
        + #"{"role":"assistant","content":"Hello"}],"max_tokens":9,"stop":"end"}"#)
  }

  @Test func aOneofsLastMemberWinsWhereverItsFieldComes() throws {
    // stop_strings (field 14) last on the wire, after stop_string (13): the list wins.
    let found = try Self.bothJSON(
      Self.bytes([.maxTokens(1), .stopString("x"), .model("m"), .stopStrings(["y", "z"])]))
    #expect(found.gateway == #"{"model":"m","max_tokens":1,"stop":["y","z"]}"#)
    #expect(found.canonical.contains(#""stopStrings":{"values":["y","z"]}"#))
    #expect(!found.canonical.contains(#""stopString""#))
  }

  @Test func manyFieldsOutOfOrderStayInWireOrderWithinEachField() throws {
    // More fields than the first reservation, every other one a message: grouped by field, each
    // field's elements in the order they came.
    var parts: [Part] = []
    for index in 0..<40 {
      parts.append(.message(Self.message("user", "m\(index)")))
      parts.append(.maxTokens(UInt64(index)))
    }
    parts.append(.model("m"))
    let found = try Self.bothJSON(Self.bytes(parts))
    let messages = (0..<40).map { #"{"role":"user","content":"m\#($0)"}"# }.joined(separator: ",")
    #expect(found.gateway == #"{"model":"m","messages":[\#(messages)],"max_tokens":39}"#)
  }
}
