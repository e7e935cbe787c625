/// The shape of one request message, learnt from one the translator wrote: the JSON it writes
/// between the values (keys, commas, brackets) cut into fixed runs, and the field each value
/// comes from, in wire order. A request of the same shape (a client's serializer writes the
/// same fields in the same order every time for one kind of call; a chat's messages may be any
/// number of the same kind) is written by comparing each field's tag with the one expected and
/// copying the run before it, instead of looking up each field, its slot and its key and
/// deciding how to write it: a unary chat request's JSON took about 4,200 instructions the
/// general way (translation-bench `requests`, callgrind).
///
/// The output for a request that fits is byte for byte the general path's: the runs are what
/// the one-pass writer puts between values for those fields, and the values are written by the
/// same writer functions. A request that does not fit (a field more or less, another order,
/// another wire type, malformed bytes) is translated the general way, which writes (or throws)
/// what it must.
final class RequestTemplate: Sendable {
  enum Action: UInt8, Sendable {
    /// A string field: its text, escaped as `JSONWriter.string(utf8:_:)` writes it.
    case string
    /// A bytes field, as base64.
    case bytes
    /// A varint, fixed32 or fixed64 field, as `ProtoToJSON.writeScalar` writes its type.
    case scalar
    /// A nested message starts (its `{` ends the run before) or ends (its `}` ends the run).
    case begin, end
    /// The message ends with the run; the caller writes what follows its members.
    case finish
  }

  struct Step: Sendable {
    /// The fixed bytes before the action, in `bytes`.
    let run: Range<Int>
    let action: Action
    /// The field's key as the wire holds it (number and wire type); for an `end`, its message's.
    let tag: UInt64
    let type: MessageSchema.FieldType
    /// A repeated field: further occurrences may follow, each written as the first was (for a
    /// message, by going back to `loopTo`, the step after its `begin`).
    let repeats: Bool
    let loopTo: Int
  }

  /// The runs end to end, then `,` and `,{` (what goes before a repeated field's later
  /// occurrences) and `padding` zero bytes, so that any run's last word can be read whole.
  let bytes: [UInt8]
  let steps: [Step]
  /// The top-level keys the caller writes itself (`ProtoToJSON.json`'s overrides) when it was
  /// learnt: the runs hold none of them, so it fits only calls that skip the same keys.
  let skipping: [String]
  private let comma: Range<Int>
  private let nextElement: Range<Int>

  /// Bytes a word store may write (and a word load read) past what it keeps.
  static let padding = 8

  /// Where `write` keeps the bounds of the nested messages it is in; how deeply a template's
  /// messages may nest follows from its size, so the learner and the writer cannot disagree.
  typealias OpenMessages = InlineArray<16, Int>
  static let maximumDepth = OpenMessages.count

  /// `runs`: the runs `steps` point into, end to end.
  init(runs: [UInt8], steps: [Step], skipping: [String]) {
    comma = runs.count..<(runs.count + 1)
    nextElement = (runs.count + 1)..<(runs.count + 3)
    bytes = runs + [UInt8(ascii: ","), UInt8(ascii: ","), UInt8(ascii: "{")] + Array(repeating: 0, count: Self.padding)
    self.steps = steps
    self.skipping = skipping
  }

  /// Where a write stands, between the stretches written in one reservation.
  private struct Cursor {
    var index = 0
    /// Where the reader is in the input.
    var position: Int
    /// The end of the message being read, and of those it is nested in.
    var bound: Int
    var depth = 0
    var bounds = OpenMessages(repeating: 0)
    /// Whether the value of `steps[index]` was written: the field may occur again next.
    var isAfterValue = false
  }

  /// Why a stretch ended.
  private enum Stop {
    case finished
    case misfit
    /// The reservation is full: the next step needs at least this much room.
    case needsRoom(Int)
    /// A value to write with the writer's own functions, the run before it written: a string
    /// with a byte JSON escapes, or beyond ASCII; bytes; a floating-point number.
    case string(Range<Int>)
    case bytes(Range<Int>)
    case scalar(MessageSchema.FieldType, UInt64)
  }

  /// Writes the members of the message in `input[range]` when it fits, and answers whether it
  /// did; when it did not, `writer` holds part of them and the caller rolls it back. Runs and
  /// plain values (ASCII strings that need no escape, integers, booleans) are stored a word at
  /// a time into one reservation of the writer's array, as long as it has room; appending
  /// them one by one (a uniqueness and room check, and a slice, each) cost more than the rest
  /// of the write (callgrind).
  func write(_ input: [UInt8], _ range: Range<Int>, to writer: inout JSONWriter) -> Bool {
    var cursor = Cursor(position: range.lowerBound, bound: range.upperBound)
    // Most requests fit in one: the runs once (with their padding), the strings, and room for
    // the last step.
    var room = bytes.count &+ input.count &+ 32
    while true {
      var stop = Stop.misfit
      writer.write(room: room) { target in
        stretch(input, from: &cursor, into: &target, stop: &stop)
      }
      switch stop {
      case .finished:
        writer.membersWritten()
        return true
      case .misfit:
        return false
      case .needsRoom(let needed):
        room = max(room &* 2, needed)
      case .string(let text):
        writer.string(utf8: input, text)
      case .bytes(let data):
        writer.string(Base64Standard.encode(input[data]))
      case .scalar(let type, let scalar):
        ProtoToJSON.writeScalar(type, scalar, to: &writer)
      }
    }
  }

  /// Writes steps from `cursor` into `target` until the message ends, a step does not fit or
  /// does not fit in the room left, or a value is for the writer; answers the bytes written.
  private func stretch(
    _ input: [UInt8], from cursor: inout Cursor, into target: inout MutableRawSpan, stop: inout Stop
  ) -> Int {
    let template = bytes
    let fixed = template.span.bytes
    let source = input.span
    var written = 0
    while true {
      let step = steps[cursor.index]
      // Room for the run and what may follow it: a value that is not a string (a sign and 20
      // digits, or `false` stored as a word), or the next element's `,{` stored as a word.
      let needed = step.run.count &+ 24
      guard written &+ needed <= target.byteCount else {
        stop = .needsRoom(needed)
        return written
      }
      // Where this step starts from again if a string in it finds no room.
      let resumeAt = (position: cursor.position, isAfterValue: cursor.isAfterValue, written: written)
      var run = step.run
      if cursor.isAfterValue {
        cursor.isAfterValue = false
        guard step.repeats, Self.next(step.tag, in: source, at: &cursor.position, before: cursor.bound) else {
          cursor.index &+= 1
          continue
        }
        run = comma
      } else {
        switch step.action {
        case .finish:
          Self.copy(fixed, run, into: &target, at: written)
          stop = cursor.position == cursor.bound ? .finished : .misfit
          return written &+ run.count
        case .begin:
          Self.copy(fixed, run, into: &target, at: written)
          written &+= run.count
          guard Self.next(step.tag, in: source, at: &cursor.position, before: cursor.bound),
            Self.enter(source, &cursor)
          else { return written }
          cursor.index &+= 1
          continue
        case .end:
          Self.copy(fixed, run, into: &target, at: written)
          written &+= run.count
          guard cursor.position == cursor.bound else { return written }
          cursor.depth &-= 1
          cursor.bound = cursor.bounds[cursor.depth]
          guard step.repeats && Self.next(step.tag, in: source, at: &cursor.position, before: cursor.bound) else {
            cursor.index &+= 1
            continue
          }
          // Another element: written from the step after its `begin`.
          guard Self.enter(source, &cursor) else { return written }
          Self.copy(fixed, nextElement, into: &target, at: written)
          written &+= nextElement.count
          cursor.index = step.loopTo
          continue
        case .string, .bytes, .scalar:
          guard Self.next(step.tag, in: source, at: &cursor.position, before: cursor.bound) else { return written }
        }
      }
      // The value of the field whose key was just read, after `run` (the step's own, or a comma
      // before a later occurrence).
      Self.copy(fixed, run, into: &target, at: written)
      written &+= run.count
      cursor.isAfterValue = true
      switch WireType(rawValue: UInt8(truncatingIfNeeded: step.tag & 7)) {
      case .lengthDelimited:
        guard let length = Self.varint(source, at: &cursor.position, before: cursor.bound),
          length <= UInt64(cursor.bound &- cursor.position)
        else { return written }
        let text = cursor.position..<(cursor.position &+ Int(length))
        cursor.position = text.upperBound
        if step.action == .bytes {
          stop = .bytes(text)
          return written
        }
        guard written &+ text.count &+ Self.padding &+ 2 <= target.byteCount else {
          cursor.position = resumeAt.position
          cursor.isAfterValue = resumeAt.isAfterValue
          stop = .needsRoom(needed &+ text.count &+ Self.padding &+ 2)
          return resumeAt.written
        }
        guard let plain = Self.plainString(source, text, into: &target, at: written) else {
          stop = .string(text)
          return written
        }
        written &+= plain
      case .varint, .fixed32, .fixed64:
        guard let scalar = Self.scalar(step.tag, source, at: &cursor.position, before: cursor.bound) else {
          return written
        }
        if let number = ProtoToJSON.integer(step.type, scalar) {
          if number.negative {
            target.storeBytes(of: UInt8(ascii: "-"), toByteOffset: written, as: UInt8.self)
            written &+= 1
          }
          written &+= DecimalDigits.store(number.magnitude, into: &target, at: written)
        } else if step.type == .bool {
          target.storeBytes(
            of: (scalar != 0 ? Self.trueWord : Self.falseWord).littleEndian, toByteOffset: written, as: UInt64.self)
          written &+= scalar != 0 ? 4 : 5
        } else {
          stop = .scalar(step.type, scalar)
          return written
        }
      default:
        return written
      }
    }
  }

  /// `true` and `false` as words, read little-endian.
  private static let trueWord: UInt64 = 0x65_75_72_74
  private static let falseWord: UInt64 = 0x65_73_6C_61_66

  /// `fixed[run]`, a word at a time: the template's bytes are padded for the last word, and the
  /// target's room counts it.
  @inline(__always)
  private static func copy(_ fixed: RawSpan, _ run: Range<Int>, into target: inout MutableRawSpan, at offset: Int) {
    var from = 0
    while from < run.count {
      target.storeBytes(of: fixed.word(at: run.lowerBound &+ from), toByteOffset: offset &+ from, as: UInt64.self)
      from &+= 8
    }
  }

  /// The string in `source[text]` in quotes, when it is ASCII that JSON takes as it is; nil,
  /// with nothing kept, when it is not. Checked and copied a word at a time, the last word the
  /// text's last eight bytes (stored again over the word before); a text under eight bytes as
  /// one word when the source has eight from its start (the flags of the bytes past it masked
  /// off: a flag never spills into a byte before the one that raised it), byte by byte
  /// otherwise. Answers the bytes stored.
  @inline(__always)
  private static func plainString(
    _ source: Span<UInt8>, _ text: Range<Int>, into target: inout MutableRawSpan, at offset: Int
  ) -> Int? {
    let quote = UInt8(ascii: "\"")
    let words = source.bytes
    let count = text.count
    target.storeBytes(of: quote, toByteOffset: offset, as: UInt8.self)
    if count >= 8 {
      var flags: UInt64 = 0
      var from = 0
      while true {
        let raw = words.word(at: text.lowerBound &+ from)
        flags |= JSONWriter.notPlainBytes(in: UInt64(littleEndian: raw))
        target.storeBytes(of: raw, toByteOffset: offset &+ 1 &+ from, as: UInt64.self)
        if from &+ 8 == count { break }
        from = min(from &+ 8, count &- 8)
      }
      guard flags == 0 else { return nil }
    } else if text.lowerBound &+ 8 <= source.count {
      let raw = words.word(at: text.lowerBound)
      let kept: UInt64 = (1 &<< (UInt64(count) &* 8)) &- 1
      guard JSONWriter.notPlainBytes(in: UInt64(littleEndian: raw)) & kept == 0 else { return nil }
      target.storeBytes(of: raw, toByteOffset: offset &+ 1, as: UInt64.self)
    } else {
      for index in text {
        let byte = source[index]
        guard JSONWriter.isPlain(byte) else { return nil }
        target.storeBytes(of: byte, toByteOffset: offset &+ 1 &+ (index &- text.lowerBound), as: UInt8.self)
      }
    }
    target.storeBytes(of: quote, toByteOffset: offset &+ 1 &+ count, as: UInt8.self)
    return count &+ 2
  }

  /// The key and length of a nested message at `cursor` (its key just read): enters it.
  private static func enter(_ source: Span<UInt8>, _ cursor: inout Cursor) -> Bool {
    guard cursor.depth < maximumDepth, let length = varint(source, at: &cursor.position, before: cursor.bound),
      length <= UInt64(cursor.bound &- cursor.position)
    else { return false }
    cursor.bounds[cursor.depth] = cursor.bound
    cursor.depth &+= 1
    cursor.bound = cursor.position &+ Int(length)
    return true
  }

  /// Whether the next field, before `bound`, has key `tag`; if so its key is read.
  @inline(__always)
  private static func next(_ tag: UInt64, in source: Span<UInt8>, at position: inout Int, before bound: Int) -> Bool {
    var after = position
    guard varint(source, at: &after, before: bound) == tag else { return false }
    position = after
    return true
  }

  /// The scalar of a varint, fixed32 or fixed64 field (by its key's wire type) before `bound`.
  @inline(__always)
  private static func scalar(_ tag: UInt64, _ source: Span<UInt8>, at position: inout Int, before bound: Int)
    -> UInt64?
  {
    switch tag & 7 {
    case 0:
      return varint(source, at: &position, before: bound)
    case 5:
      guard position &+ 4 <= bound else { return nil }
      defer { position &+= 4 }
      return UInt64(UInt32(littleEndian: source.bytes.halfWord(at: position)))
    default:
      guard position &+ 8 <= bound else { return nil }
      defer { position &+= 8 }
      return UInt64(littleEndian: source.bytes.word(at: position))
    }
  }

  /// A varint before `bound`, decoded as `ProtoWireReader` decodes one; nil where that throws.
  @inline(__always)
  private static func varint(_ source: Span<UInt8>, at position: inout Int, before bound: Int) -> UInt64? {
    guard position < bound else { return nil }
    let first = source[position]
    if first < 0x80 {
      position &+= 1
      return UInt64(first)
    }
    var after = position
    guard let value = try? ProtoWireReader.multiByteVarint(source, at: &after, end: bound) else { return nil }
    position = after
    return value
  }
}
