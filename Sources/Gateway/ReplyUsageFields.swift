import ProtoJSON

/// Where a unary reply's protobuf translation holds vLLM's token counts: its top-level `usage`
/// message and, in that, `prompt_tokens` (or Responses' `input_tokens`) and `completion_tokens`
/// (or `output_tokens`). Read from the message the gateway has just written rather than from
/// vLLM's JSON: walking a few top-level fields costs a fraction of searching the JSON's end for
/// `"usage"` and parsing its object (about 850 instructions a chat call, callgrind).
struct ReplyUsageFields: Sendable {
  /// The fields' keys (number and wire type) as they are on the wire, compared whole.
  let usageKey: UInt64
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
    var usage = TokenUsage()
    var at = range.lowerBound
    while at < range.upperBound {
      guard let (key, value) = Self.field(span, at: &at, end: range.upperBound) else { return nil }
      if key == usageKey, let counts = value.bytes {
        guard readCounts(span, counts, into: &usage) else { return nil }
      }
    }
    return usage
  }

  /// The usage message's counts into `usage`; false if it is not a message.
  private func readCounts(_ span: Span<UInt8>, _ range: Range<Int>, into usage: inout TokenUsage) -> Bool {
    var at = range.lowerBound
    while at < range.upperBound {
      guard let (key, value) = Self.field(span, at: &at, end: range.upperBound) else { return false }
      // int32 counts: a negative one (ten bytes on the wire) is no count.
      if key == promptKey {
        usage.prompt = max(0, Int(Int32(truncatingIfNeeded: value.varint)))
      } else if key == completionKey {
        usage.completion = max(0, Int(Int32(truncatingIfNeeded: value.varint)))
      }
    }
    return true
  }

  /// The field at `at`, moving past it: its key, and its value's varint or, length-delimited, its
  /// bytes' range. Nil when it is not a field that ends by `end`.
  @inline(__always)
  private static func field(_ span: Span<UInt8>, at: inout Int, end: Int) -> (
    key: UInt64, value: (varint: UInt64, bytes: Range<Int>?)
  )? {
    guard let key = varint(span, at: &at, end: end) else { return nil }
    switch key & 7 {
    case 0:
      guard let value = varint(span, at: &at, end: end) else { return nil }
      return (key, (value, nil))
    case 1, 5:
      let width = key & 7 == 1 ? 8 : 4
      guard width <= end - at else { return nil }
      at += width
      return (key, (0, nil))
    case 2:
      guard let length = varint(span, at: &at, end: end), length <= UInt64(end - at) else { return nil }
      let bytes = at..<(at + Int(length))
      at = bytes.upperBound
      return (key, (0, bytes))
    default:
      return nil
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
