import ProtoJSON

/// A log line's `"key":"value"` member whose value mostly repeats from one line to the next (a
/// model, a client key, an upstream, a status): escaped once, then copied while it stays the
/// same. Escaping each anew cost about 450 instructions a member (callgrind).
struct RepeatedMember {
  private let key: JSONWriter.Key
  private var value: String? = nil
  private var member: [UInt8] = []

  init(_ key: JSONWriter.Key) {
    self.key = key
  }

  mutating func write(_ newValue: String, to json: inout JSONWriter) {
    if newValue != value {
      var writer = JSONWriter(capacity: newValue.utf8.count + 16)
      writer.member(key, newValue)
      member = writer.bytes
      value = newValue
    }
    json.raw(member)
  }
}
