/// The finish reasons in a chat or completion answer or stream event: every
/// `"finish_reason":"<reason>"`. Read only while tracing, for the span's
/// `gen_ai.response.finish_reasons`. A quote inside generated text is escaped, so the key's
/// pattern cannot match text.
enum FinishReasons {
  static func find(in json: [UInt8]) -> [String] {
    var reasons: [String] = []
    let key = Array("\"finish_reason\"".utf8)
    var at = 0
    while let found = firstIndex(of: key, in: json, from: at) {
      at = found + key.count
      while at < json.count, json[at] == UInt8(ascii: " ") || json[at] == UInt8(ascii: ":") { at += 1 }
      guard at < json.count, json[at] == UInt8(ascii: "\"") else { continue }
      let start = at + 1
      var end = start
      // Reasons are plain words (stop, length, tool_calls, abort); anything escaped is not one.
      while end < json.count, json[end] != UInt8(ascii: "\""), json[end] != UInt8(ascii: "\\"), end - start < 64 {
        end += 1
      }
      guard end < json.count, json[end] == UInt8(ascii: "\"") else { continue }
      reasons.append(String(decoding: json[start..<end], as: UTF8.self))
      at = end + 1
    }
    return reasons
  }

  private static func firstIndex(of pattern: [UInt8], in json: [UInt8], from start: Int) -> Int? {
    guard json.count >= pattern.count else { return nil }
    var at = start
    while at <= json.count - pattern.count {
      if json[at] == pattern[0], json[at..<(at + pattern.count)].elementsEqual(pattern) { return at }
      at += 1
    }
    return nil
  }
}
