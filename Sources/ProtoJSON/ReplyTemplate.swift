/// The shape of one JSON reply, learnt from a reply the translator wrote: its bytes outside the
/// values that vary (keys, punctuation, nulls) and, between them, how each value is written.
/// A reply of the same shape (vLLM sends the same keys and nulls in the same order every time
/// for one kind of request) is then translated by comparing those runs of bytes in place and
/// writing only the values, instead of finding each of its thirty-odd keys one by one: a chat
/// reply's translation took about 10,600 instructions the general way (translation-bench
/// `replies`, callgrind), most of them for keys whose value is null.
///
/// Only what the translator writes the plain way (`PlainValueWrite`: strings without escapes,
/// plain integers, objects and arrays of objects) is a value here; a shape with anything else
/// is not learnt. The output for a reply that fits is byte for byte the general path's: the
/// same writes in the same order, since the translator's choices depend on the keys and on the
/// values' kinds, which fitting fixes. A reply that does not fit (a string with an escape, a
/// fraction, another key or one more choice) is translated the general way.
final class ReplyTemplate: Sendable {
  /// What follows a run of fixed bytes.
  enum Action: UInt8, Sendable {
    /// A string's text: a length-delimited field. The run before ends with its opening quote,
    /// the run after starts with its closing one.
    case string
    /// A plain integer: a varint field.
    case integer
    /// A nested message starts (its `{`, the next run's first byte) or ends.
    case begin, end
    /// The reply ends with the run.
    case finish
  }

  struct Step: Sendable {
    /// The fixed bytes before the action, in `bytes`.
    let run: Range<Int>
    let action: Action
    let number: Int32
    let type: MessageSchema.FieldType
  }

  /// The reply it was learnt from; the runs are ranges of it.
  let bytes: [UInt8]
  let steps: [Step]
  /// Where `write` keeps the nested messages it has begun; how deeply a template's messages may
  /// nest follows from its size, so the learner and the writer cannot disagree.
  typealias OpenMessages = InlineArray<16, Int>
  static let maximumDepth = OpenMessages.count

  init(bytes: [UInt8], steps: [Step]) {
    self.bytes = bytes
    self.steps = steps
  }

  /// The most bytes one step writes besides a string's content: a tag (up to 5 bytes) and a
  /// length or varint (up to 10), or a string's last word written whole (7 past its content),
  /// or a nested message's length grown past its one reserved byte (4). The output's room is
  /// reserved once from this: `json`'s strings are at most its own size.
  static let mostBytesAStepAdds = 24

  /// Appends `json`'s translation to `output` when it fits, and answers whether it did; when it
  /// did not, `output` holds part of one and the caller cuts it back. All of it goes into one
  /// reservation of the array: a capacity and uniqueness check for each field cost about 1,000
  /// of a chat reply's 5,500 instructions (translation-bench replies-shaped, callgrind).
  func write(_ json: [UInt8], to output: inout [UInt8]) -> Bool {
    var nothing = NoFieldWatch()
    return append(json, to: &output, watch: &nothing)
  }

  /// The same, noting where in `output` the top-level message field `watch` looks for was
  /// written (the index of its tag). The tag stays where it was written: a message's end moves
  /// only its own content.
  func write(_ json: [UInt8], to output: inout [UInt8], watch: inout TopLevelFieldWatch) -> Bool {
    let base = output.count
    let fits = append(json, to: &output, watch: &watch)
    watch.moveBy(base)
    return fits
  }

  /// Generic over the watch so that writing with none is specialized to the writer it was
  /// before: nothing is compared (a field number compared at every message cost about 35
  /// instructions a chat reply, callgrind).
  private func append<Watch: FieldWatch>(_ json: [UInt8], to output: inout [UInt8], watch: inout Watch) -> Bool {
    var fits = false
    output.append(addingCapacity: json.count &+ steps.count &* Self.mostBytesAStepAdds) { span in
      fits = translate(json, to: &span, watch: &watch)
    }
    return fits
  }

  private func translate<Watch: FieldWatch>(
    _ json: [UInt8], to output: inout OutputSpan<UInt8>, watch: inout Watch
  ) -> Bool {
    var starts = OpenMessages(repeating: 0)
    var depth = 0
    var position = 0
    let input = json.span
    let template = bytes
    let fixed = template.span
    for step in steps {
      let end = position &+ step.run.count
      guard end <= input.count, input.extracting(position..<end).hasSameBytes(as: fixed.extracting(step.run)) else {
        return false
      }
      position = end
      switch step.action {
      case .string:
        guard let close = JSONReader.plainStringEnd(of: json, from: position), close < json.count else { return false }
        ProtoWireWriter.varint(ProtoWireWriter.key(step.number, .lengthDelimited), to: &output)
        ProtoWireWriter.varint(UInt64(close &- position), to: &output)
        Self.copy(input, position..<close, to: &output)
        position = close
      case .integer:
        guard let (value, end) = JSONReader.plainInteger(input, from: position) else { return false }
        ProtoWireWriter.varint(ProtoWireWriter.key(step.number, .varint), to: &output)
        ProtoWireWriter.varint(JSONToProto.varintBits(value, as: step.type), to: &output)
        position = end
      case .begin:
        watch.messageBegins(step.number, depth: depth, at: output.count)
        starts[depth] = ProtoWireWriter.begin(step.number, in: &output)
        depth &+= 1
      case .end:
        depth &-= 1
        ProtoWireWriter.end(starts[depth], in: &output)
      case .finish:
        return position == input.count
      }
    }
    return false
  }

  /// `input[range]`, eight bytes a step where the last word can be read whole from `input` (a
  /// JSON string is followed by at least its closing quote and what ends the reply).
  @inline(__always)
  private static func copy(_ input: Span<UInt8>, _ range: Range<Int>, to output: inout OutputSpan<UInt8>) {
    guard range.lowerBound &+ ((range.count &+ 7) & ~7) <= input.count else {
      for index in range { output.append(input[index]) }
      return
    }
    ProtoWireWriter.appendWords(of: input, range, to: &output)
  }
}
