import ProtoJSON

/// Where a unary reply's protobuf translation holds vLLM's token counts: its top-level `usage`
/// message and, in that, `prompt_tokens` (or Responses' `input_tokens`) and `completion_tokens`
/// (or `output_tokens`). Read from the message the gateway has just written rather than from
/// vLLM's JSON: walking a few top-level fields costs a fraction of searching the JSON's end for
/// `"usage"` and parsing its object (about 850 instructions a chat call, callgrind).
struct ReplyUsageFields: Sendable {
  /// The fields' keys (number and wire type) as they are on the wire, compared whole.
  let usageKey: UInt64
  /// The `usage` field's number, for the translator to note where it writes it.
  let usageNumber: Int32
  /// Never a key (field 0) when the usage message has no such field (embeddings count no
  /// completion).
  let promptKey: UInt64
  let completionKey: UInt64

  /// Nil when `message` has no `usage` message field with a prompt or completion count.
  init?(of message: MessageSchema, in schema: Schema) {
    guard let index = message.fieldIndex(named: "usage") else { return nil }
    let field = message.fields[index]
    guard field.type == .message, !field.isRepeated, let usageMessage = schema.message(of: field) else { return nil }
    func varintKey(_ names: String...) -> UInt64 {
      for name in names {
        if let index = usageMessage.fieldIndex(named: name), usageMessage.fields[index].type == .int32,
          !usageMessage.fields[index].isRepeated
        {
          return UInt64(usageMessage.fields[index].number) << 3 | UInt64(WireType.varint.rawValue)
        }
      }
      return 0
    }
    usageNumber = field.number
    usageKey = UInt64(field.number) << 3 | UInt64(WireType.lengthDelimited.rawValue)
    promptKey = varintKey("prompt_tokens", "input_tokens")
    completionKey = varintKey("completion_tokens", "output_tokens")
    guard promptKey != 0 || completionKey != 0 else { return nil }
  }

  /// The counts in the message at `range` of `bytes`, repeated `usage` fields merged as a
  /// protobuf parser merges them. Zero where it says nothing; nil for bytes that are not a
  /// message (which the gateway does not write). Walked here rather than with ProtoWireReader,
  /// whose general fields cost about 70 instructions each (callgrind, a chat reply's ten).
  func read(_ bytes: [UInt8], range: Range<Int>) -> TokenUsage? {
    let span = bytes.span
    guard range.lowerBound >= 0, range.upperBound <= span.count else { return nil }
    var usage = TokenUsage()
    var at = range.lowerBound
    let end = range.upperBound
    while at < end {
      guard let key = Self.varint(span, at: &at, end: end) else { return nil }
      if key & 7 == 2 {
        guard let valueEnd = Self.lengthDelimitedEnd(span, at: &at, end: end) else { return nil }
        if key == usageKey, !readCounts(span, from: at, to: valueEnd, into: &usage) { return nil }
        at = valueEnd
      } else if !Self.skipValue(span, key: key, at: &at, end: end) {
        return nil
      }
    }
    return usage
  }

  /// The counts in the one `usage` field whose tag is at `tag` in `bytes` (where the reply
  /// template wrote it, `JSONToProto.append(from:message:to:shapes:watching:)`): read there,
  /// without walking the fields before it (about 400 instructions a chat reply, callgrind). Nil
  /// when no usage field is there.
  func read(_ bytes: [UInt8], usageAt tag: Int) -> TokenUsage? {
    let span = bytes.span
    guard tag >= 0, tag < span.count else { return nil }
    var at = tag
    let end = span.count
    guard Self.varint(span, at: &at, end: end) == usageKey,
      let valueEnd = Self.lengthDelimitedEnd(span, at: &at, end: end)
    else { return nil }
    var usage = TokenUsage()
    guard readCounts(span, from: at, to: valueEnd, into: &usage) else { return nil }
    return usage
  }

  /// The usage message's counts into `usage`; false if it is not a message.
  private func readCounts(_ span: Span<UInt8>, from start: Int, to end: Int, into usage: inout TokenUsage) -> Bool {
    var at = start
    while at < end {
      guard let key = Self.varint(span, at: &at, end: end) else { return false }
      if key == promptKey || key == completionKey {
        guard let value = Self.varint(span, at: &at, end: end) else { return false }
        // int32 counts: a negative one (ten bytes on the wire) is no count.
        let count = max(0, Int(Int32(truncatingIfNeeded: value)))
        if key == promptKey { usage.prompt = count } else { usage.completion = count }
      } else if key & 7 == 2 {
        guard let valueEnd = Self.lengthDelimitedEnd(span, at: &at, end: end) else { return false }
        at = valueEnd
      } else if !Self.skipValue(span, key: key, at: &at, end: end) {
        return false
      }
    }
    return true
  }

  /// Where a length-delimited value ends, its length being at `at` (which moves past the length);
  /// nil when the length is not a varint or the value does not end by `end`.
  @inline(__always)
  private static func lengthDelimitedEnd(_ span: Span<UInt8>, at: inout Int, end: Int) -> Int? {
    guard let length = varint(span, at: &at, end: end), length <= UInt64(end &- at) else { return nil }
    return at &+ Int(truncatingIfNeeded: length)
  }

  /// Moves `at` past the value of a field that is not length-delimited; false when it is not one
  /// that ends by `end`. Keys and values are compared whole and values read apart from the walk
  /// that skips them: the walk returning each field's key and value together cost about 50
  /// instructions a field (callgrind).
  @inline(__always)
  private static func skipValue(_ span: Span<UInt8>, key: UInt64, at: inout Int, end: Int) -> Bool {
    switch key & 7 {
    case 0: return varint(span, at: &at, end: end) != nil
    case 1, 5:
      let width = key & 7 == 1 ? 8 : 4
      guard width <= end &- at else { return false }
      at &+= width
      return true
    default: return false
    }
  }

  /// The varint at `at`, moving past it; nil when it runs past `end` or over ten bytes. Keys,
  /// lengths under 128 and small counts take one byte: that case stays inline.
  @inline(__always)
  private static func varint(_ span: Span<UInt8>, at: inout Int, end: Int) -> UInt64? {
    guard at < end else { return nil }
    let first = span[at]
    at += 1
    return first < 0x80 ? UInt64(first) : multiByteVarint(span, first: first, at: &at, end: end)
  }

  @inline(never)
  private static func multiByteVarint(_ span: Span<UInt8>, first: UInt8, at: inout Int, end: Int) -> UInt64? {
    var value = UInt64(first & 0x7F)
    var shift: UInt64 = 7
    while at < end, shift < 64 {
      let byte = span[at]
      at += 1
      value |= UInt64(byte & 0x7F) << shift
      if byte < 0x80 { return value }
      shift += 7
    }
    return nil
  }
}
