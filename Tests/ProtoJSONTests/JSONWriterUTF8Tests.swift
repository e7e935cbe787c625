import Foundation
import Testing

@testable import ProtoJSON

/// Keys from the wire (Struct keys, map keys) are bytes that need not be UTF-8; the JSON written
/// must be, or vLLM and Foundation refuse the whole body (fuzz-request-json found it).
@Suite struct JSONWriterUTF8Tests {
  @Test func invalidUTF8InAKeyIsRepaired() {
    var writer = JSONWriter()
    writer.beginObject()
    writer.key(bytes: [UInt8(ascii: "a"), 0xFF, 0xC3])
    writer.null()
    writer.endObject()
    #expect(writer.bytes == Array("{\"a\u{FFFD}\u{FFFD}\":null}".utf8))
  }

  @Test func structAndMapKeysFromTheWireBecomeUTF8() throws {
    var entry = ProtoWireWriter()
    entry.lengthDelimited(1, [0x6B, 0x81])  // key "k\x81"
    var extraBody = ProtoWireWriter()
    extraBody.lengthDelimited(1, entry.bytes)  // Struct.fields {"k\x81": null}
    var bias = ProtoWireWriter()
    bias.lengthDelimited(1, [0xFF])  // logit_bias key "\xff", value absent
    var request = ProtoWireWriter()
    request.lengthDelimited(4, bias.bytes)
    request.lengthDelimited(999, extraBody.bytes)
    let json = try ProtoToJSON(schema: .bundled).json(
      from: request.bytes, typeName: "vllmgateway.v1.ChatCompletionRequest")
    #expect(String(decoding: json, as: UTF8.self) == "{\"logit_bias\":{\"\u{FFFD}\":null},\"k\u{FFFD}\":null}")
    #expect((try? JSONSerialization.jsonObject(with: Data(json))) is [String: Any])
  }
}
