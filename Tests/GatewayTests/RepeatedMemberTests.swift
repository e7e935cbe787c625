import ProtoJSON
import Testing

@testable import Gateway

/// A log line's member that is escaped once and reused while its value repeats: each line still
/// gets its own value, escaped, with commas where a writer would put them.
@Suite struct RepeatedMemberTests {
  @Test func eachLineGetsItsOwnValue() {
    var model = RepeatedMember(JSONWriter.Key(plain: "model"))
    var lines: [String] = []
    for value in ["m", "m", #"q"uote"#, "", "m", "\u{1}"] {
      var json = JSONWriter()
      json.beginObject()
      json.key(JSONWriter.Key(plain: "a"))
      json.int(1)
      model.write(value, to: &json)
      json.endObject()
      lines.append(String(decoding: json.bytes, as: UTF8.self))
    }
    #expect(
      lines == [
        #"{"a":1,"model":"m"}"#, #"{"a":1,"model":"m"}"#, #"{"a":1,"model":"q\"uote"}"#, #"{"a":1,"model":""}"#,
        #"{"a":1,"model":"m"}"#, #"{"a":1,"model":"\u0001"}"#,
      ])
  }

  @Test func appendingWritesOnAtTheBufferEnd() {
    var buffer = Array("x\n".utf8)
    JSONWriter.appending(to: &buffer) { json in
      json.beginObject()
      json.key(JSONWriter.Key(plain: "b"))
      json.bool(true)
      json.endObject()
    }
    #expect(String(decoding: buffer, as: UTF8.self) == "x\n{\"b\":true}")
  }
}
