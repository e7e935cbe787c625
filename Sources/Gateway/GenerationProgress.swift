import ProtoJSON

/// What a streamed chat or text completion has sent the client so far, read from each chunk as
/// it leaves: the text of its one choice, how many tokens that was, and whether what was sent can
/// be continued exactly elsewhere (one choice, no tool calls or reasoning, not yet finished).
/// Both chunk types share their layout: choices are field 5, each with its index (1) and finish
/// reason (4); a chat choice's delta (2) holds content (2), reasoning (3) and tool calls (4), a
/// completion choice's text is field 2.
package struct GenerationProgress {
  let isChat: Bool
  /// The text choice 0 has been given, in order.
  private(set) var text: [UInt8] = []
  /// The ids of the tokens generated, when vLLM sends them (the call asked for
  /// `return_token_ids`), and of the prompt: with both, a continuation is exact to the token.
  private(set) var tokenIDs: [Int64] = []
  private(set) var promptTokenIDs: [Int64]? = nil
  /// Chunks that carried text, which is one token each as vLLM streams most text.
  private var textChunks = 0
  /// Tokens generated so far: exact with token ids, else counted by chunks of text.
  package var tokens: Int { promptTokenIDs != nil ? tokenIDs.count : textChunks }
  /// Set once something was sent that a continuation could not reproduce.
  private(set) var cannotContinue: String? = nil
  /// Set once the choice has its finish reason: nothing is left to continue.
  private(set) var isFinished = false

  package init(isChat: Bool) {
    self.isChat = isChat
  }

  /// What a chunk carried.
  package enum Carried {
    /// Text, a finish reason, usage or anything else the client needs.
    case something
    /// Only a chat answer's opening `role` (what a continuation starts with too).
    case roleOnly
  }

  /// Notes one chunk about to be sent to the client: `chunk[range]` (all of it by default).
  package mutating func note(chunk: [UInt8], range: Range<Int>? = nil) -> Carried {
    let wire = chunk.span
    var index = range?.lowerBound ?? 0
    let end = range?.upperBound ?? chunk.count
    var sawRoleOnly = false
    var sawOther = false
    do {
      var field = Field()
      while try Self.nextField(wire, at: &index, end: end, into: &field) {
        switch field.number {
        case 5 where field.isLengthDelimited:
          if try noteChoice(chunk, wire, field.range) { sawRoleOnly = true } else { sawOther = true }
        case 6:
          sawOther = true  // usage
        case 8 where isChat && promptTokenIDs == nil:
          // The first upstream's: a continuation's prompt holds generated tokens too.
          promptTokenIDs = try Self.integers(wire, field)
        default:
          break
        }
      }
    } catch {
      cannotContinue = "a chunk did not parse"
      return .something
    }
    return sawRoleOnly && !sawOther ? .roleOnly : .something
  }

  /// Notes a choice; true when it held nothing but a role.
  private mutating func noteChoice(_ chunk: [UInt8], _ wire: Span<UInt8>, _ range: Range<Int>) throws(Malformed) -> Bool
  {
    var index = range.lowerBound
    var piece: Range<Int>? = nil
    var hasRole = false
    var hasOther = false
    var field = Field()
    while try Self.nextField(wire, at: &index, end: range.upperBound, into: &field) {
      switch field.number {
      case 1 where !field.isLengthDelimited && field.value != 0:
        cannotContinue = "the call asked for several choices"
        return false
      case 1:
        break
      case 4 where field.isLengthDelimited:
        isFinished = true
        hasOther = true
      case 2 where field.isLengthDelimited && isChat:
        var deltaIndex = field.range.lowerBound
        let deltaEnd = field.range.upperBound
        var member = Field()
        while try Self.nextField(wire, at: &deltaIndex, end: deltaEnd, into: &member) {
          switch member.number {
          case 1: hasRole = true
          case 2: piece = member.range
          case 3:
            cannotContinue = "the answer has reasoning"
            return false
          case 4:
            cannotContinue = "the answer calls tools"
            return false
          default: hasOther = true
          }
        }
      case 2 where field.isLengthDelimited:
        piece = field.range
      case 7:
        tokenIDs += try Self.integers(wire, field)
        hasOther = true
      case 8 where !isChat:
        if promptTokenIDs == nil { promptTokenIDs = try Self.integers(wire, field) }
      default:
        hasOther = true
      }
    }
    if let piece, !piece.isEmpty {
      // Text only while it can still be continued: after that it is not needed.
      if cannotContinue == nil { text.append(contentsOf: chunk[piece]) }
      textChunks += 1
      return false
    }
    return hasRole && !hasOther
  }

  /// A chunk that is not well-formed protobuf.
  private struct Malformed: Error {}

  /// One field as `nextField` found it: its number, a varint's value, and where a
  /// length-delimited field's bytes lie (empty for the other kinds).
  private struct Field {
    var number: UInt64 = 0
    var isLengthDelimited = false
    var value: UInt64 = 0
    var range: Range<Int> = 0..<0
  }

  /// Reads the field at `index` into `field` and moves past it; false at `end`. The walk goes
  /// over the chunk's bytes as a span into one reused field: a ProtoWireReader for each nested
  /// message, each holding the array and returning a WireField, cost about 1,090 instructions a
  /// chunk, this walk about 790 (callgrind, translation-bench chunks-tracked less chunks).
  @inline(__always)
  private static func nextField(
    _ wire: Span<UInt8>, at index: inout Int, end: Int, into field: inout Field
  ) throws(Malformed) -> Bool {
    guard index < end else { return false }
    let key = try varint(wire, at: &index, end: end)
    field.number = key >> 3
    guard field.number > 0, field.number <= 0x1FFF_FFFF else { throw Malformed() }
    field.isLengthDelimited = false
    field.value = 0
    switch key & 7 {
    case 0:
      field.value = try varint(wire, at: &index, end: end)
    case 2:
      let length = try varint(wire, at: &index, end: end)
      guard length <= UInt64(end &- index) else { throw Malformed() }
      let start = index
      index &+= Int(length)
      field.isLengthDelimited = true
      field.range = start..<index
    case 1:
      guard end &- index >= 8 else { throw Malformed() }
      index &+= 8
    case 5:
      guard end &- index >= 4 else { throw Malformed() }
      index &+= 4
    default:
      throw Malformed()  // groups and invalid wire types
    }
    return true
  }

  /// A varint at `index`: one byte inline, longer ones (up to ten bytes) in a loop.
  @inline(__always)
  private static func varint(_ wire: Span<UInt8>, at index: inout Int, end: Int) throws(Malformed) -> UInt64 {
    guard index < end else { throw Malformed() }
    let first = wire[index]
    index &+= 1
    if first < 0x80 { return UInt64(first) }
    var result = UInt64(first & 0x7F)
    var shift: UInt64 = 7
    while index < end {
      let byte = wire[index]
      index &+= 1
      if shift == 63 && byte > 1 { throw Malformed() }
      result |= UInt64(byte & 0x7F) << shift
      if byte < 0x80 { return result }
      shift &+= 7
      if shift > 63 { throw Malformed() }
    }
    throw Malformed()
  }

  /// A repeated integer field's values, packed or not.
  private static func integers(_ wire: Span<UInt8>, _ field: Field) throws(Malformed) -> [Int64] {
    guard field.isLengthDelimited else { return [Int64(truncatingIfNeeded: field.value)] }
    var values: [Int64] = []
    var index = field.range.lowerBound
    while index < field.range.upperBound {
      values.append(Int64(truncatingIfNeeded: try varint(wire, at: &index, end: field.range.upperBound)))
    }
    return values
  }
}
