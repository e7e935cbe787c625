import Testing

@testable import ProtoJSON

/// JSON keys land in their fields however vLLM orders them. The translator compares the next
/// few keys of the schema's order in place: a oneof vLLM writes under its own name
/// ("stop_reason") stands where its first member is declared, the members' own names still
/// work as keys, and keys out of order or unknown are still found or kept.
@Suite struct KeyOrderTests {
  static let toProto = JSONToProto(schema: .bundled)

  struct Field: Equatable {
    let number: Int32
    let scalar: UInt64
    let bytes: [UInt8]
  }

  static func fields(_ json: String, as type: String) throws -> [Field] {
    let proto = try toProto.proto(from: Array(json.utf8), typeName: "vllmgateway.v1." + type)
    var reader = ProtoWireReader(proto)
    var fields: [Field] = []
    while let field = try reader.next() {
      fields.append(Field(number: field.number, scalar: field.scalar, bytes: Array(proto[field.range])))
    }
    return fields
  }

  @Test func keysAfterAOneofWrittenUnderItsOwnNameAreTranslated() throws {
    let choice = try Self.fields(
      #"{"index":1,"finish_reason":"stop","stop_reason":42,"token_ids":[7,8]}"#, as: "ChatChoice")
    #expect(choice.map(\.number) == [1, 4, 6, 7])
    #expect(choice[1].bytes == Array("stop".utf8))
    #expect(choice[2].scalar == 42)
    #expect(choice[3].bytes == [7, 8])
  }

  @Test func aOneofMembersOwnNameIsAKeyToo() throws {
    let choice = try Self.fields(#"{"index":1,"stop_reason_text":"</s>","token_ids":[9]}"#, as: "ChatChoice")
    #expect(choice.map(\.number) == [1, 5, 7])
    #expect(choice[1].bytes == Array("</s>".utf8))
  }

  @Test func keysInAnotherOrderAndUnknownKeysAreAllKept() throws {
    // vLLM's usage order (total before completion), a null the schema lacks, an unknown key.
    let usage = try Self.fields(
      #"{"prompt_tokens":9,"total_tokens":25,"completion_tokens":16,"prompt_tokens_details":null,"cached":3}"#,
      as: "Usage")
    #expect(usage.map(\.number) == [1, 3, 2, 15])
    #expect(usage.prefix(3).map(\.scalar) == [9, 25, 16])
  }
}
