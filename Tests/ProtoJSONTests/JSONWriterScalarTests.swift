import Foundation
import Testing

@testable import ProtoJSON

/// Integers are written digit by digit and strings copied in runs: each must
/// still be exactly what a JSON parser reads back.
@Suite struct JSONWriterScalarTests {
  @Test(arguments: [Int64.min, -1_000_000, -10, -9, -1, 0, 1, 9, 10, 99, 100, 123_456_789, Int64.max])
  func integersAreWrittenAsTheirDecimalDigits(value: Int64) {
    var writer = JSONWriter()
    writer.int(value)
    #expect(writer.bytes == Array(String(value).utf8))
  }

  @Test(arguments: [UInt64(0), 1, 10, 18_446_744_073_709_551_615])
  func unsignedIntegersToo(value: UInt64) {
    var writer = JSONWriter()
    writer.uint(value)
    #expect(writer.bytes == Array(String(value).utf8))
  }

  @Test func stringsNeedingNoEscapingAndStringsThatDoRoundTrip() throws {
    let values = [
      "", "plain", "/vllmgateway.v1.VLLMService/CreateChatCompletion", "a\"b", "tab\tand\nnewline",
      "back\\slash", "\u{01}control", "ünïcödé ✓", "plain prefix then \"quote\" at the end",
    ]
    var writer = JSONWriter()
    writer.beginArray()
    for value in values { writer.string(value) }
    writer.endArray()
    let parsed = try JSONSerialization.jsonObject(with: Data(writer.bytes)) as? [String]
    #expect(parsed == values)
  }

  @Test func membersJoinWithCommas() throws {
    var writer = JSONWriter()
    writer.beginObject()
    writer.member(JSONWriter.Key(plain: "method"), "/a/B")
    writer.key(plain: "n")
    writer.int(3)
    writer.key(plain: "time")
    writer.raw(Array("\"2026-12-01T00:00:00.000Z\"".utf8))
    writer.endObject()
    #expect(
      String(decoding: writer.bytes, as: UTF8.self) == #"{"method":"/a/B","n":3,"time":"2026-12-01T00:00:00.000Z"}"#)
  }

  @Test func keyBytesCompareWithStaticText() {
    let bytes = Array("xprompt_tokensy".utf8)
    #expect(bytes[1..<14].equals("prompt_tokens"))
    #expect(!bytes[1..<14].equals("prompt_tokenz"))
    #expect(!bytes[1..<13].equals("prompt_tokens"))
    #expect(bytes[0..<0].equals(""))
  }
}
