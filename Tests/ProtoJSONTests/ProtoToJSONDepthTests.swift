import Testing

@testable import ProtoJSON

/// A request of Structs nested in Values nested in Structs: a few bytes a level on the wire, and
/// without a bound one stack frame after another until the stack overflows (fuzz-request-json
/// found it). The translation refuses a value nested deeper than the gateway's JSON reader
/// accepts.
@Suite struct ProtoToJSONDepthTests {
  static let toJSON = ProtoToJSON(schema: .bundled)

  /// A ChatCompletionRequest whose extra_body holds `levels` objects, one inside the other. Built
  /// from the inside out, back to front, so a deep one takes linear time.
  static func nestedRequest(levels: Int) -> [UInt8] {
    var reversed: [UInt8] = Array([0x1A, 0x01, UInt8(ascii: "x")].reversed())  // Value.string_value
    func prepend(_ bytes: [UInt8]) { reversed.append(contentsOf: bytes.reversed()) }
    func wrap(_ number: Int32) {
      var header = ProtoWireWriter()
      header.tag(number, .lengthDelimited)
      header.varint(UInt64(reversed.count))
      prepend(header.bytes)
    }
    let key: [UInt8] = [0x0A, 0x01, UInt8(ascii: "a")]  // Struct.FieldsEntry.key
    for _ in 0..<levels {
      wrap(2)  // FieldsEntry.value
      prepend(key)
      wrap(1)  // Struct.fields
      wrap(5)  // Value.struct_value
    }
    wrap(2)
    prepend(key)
    wrap(1)
    wrap(999)  // ChatCompletionRequest.extra_body
    return reversed.reversed()
  }

  @Test func nestingTheReaderAcceptsIsTranslated() throws {
    // The request object, one object a level, and the string innermost: a value at the limit.
    let levels = JSONReader.maximumDepth - 2
    let json = try Self.toJSON.json(
      from: Self.nestedRequest(levels: levels), typeName: "vllmgateway.v1.ChatCompletionRequest")
    var reader = JSONReader(json)
    try reader.skipValue()
    let atEnd = reader.isAtEnd
    #expect(atEnd)
  }

  @Test(arguments: [JSONReader.maximumDepth - 1, 100_000])
  func deeperNestingIsRefused(levels: Int) {
    #expect(throws: ProtoJSONError.self) {
      try Self.toJSON.json(from: Self.nestedRequest(levels: levels), typeName: "vllmgateway.v1.ChatCompletionRequest")
    }
  }
}
