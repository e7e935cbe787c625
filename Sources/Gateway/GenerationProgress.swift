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
    var carried = Carried.something
    do {
      var reader = ProtoWireReader(chunk, range: range)
      var sawRoleOnly = false
      var sawOther = false
      while let field = try reader.next() {
        switch field.number {
        case 5 where field.wireType == .lengthDelimited:
          if try noteChoice(chunk, field.range) { sawRoleOnly = true } else { sawOther = true }
        case 6:
          sawOther = true  // usage
        case 8 where isChat && promptTokenIDs == nil:
          // The first upstream's: a continuation's prompt holds generated tokens too.
          promptTokenIDs = try Self.integers(chunk, field)
        default:
          break
        }
      }
      if sawRoleOnly && !sawOther { carried = .roleOnly }
    } catch {
      cannotContinue = "a chunk did not parse"
    }
    return carried
  }

  /// Notes a choice; true when it held nothing but a role.
  private mutating func noteChoice(_ chunk: [UInt8], _ range: Range<Int>) throws(ProtoWireReader.Failure) -> Bool {
    var reader = ProtoWireReader(chunk, range: range)
    var piece: Range<Int>? = nil
    var hasRole = false
    var hasOther = false
    while let field = try reader.next() {
      switch (field.number, field.wireType) {
      case (1, .varint) where field.scalar != 0:
        cannotContinue = "the call asked for several choices"
        return false
      case (1, _):
        break
      case (4, .lengthDelimited):
        isFinished = true
        hasOther = true
      case (2, .lengthDelimited) where isChat:
        var delta = ProtoWireReader(chunk, range: field.range)
        while let member = try delta.next() {
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
      case (2, .lengthDelimited):
        piece = field.range
      case (7, _):
        tokenIDs += try Self.integers(chunk, field)
        hasOther = true
      case (8, _) where !isChat:
        if promptTokenIDs == nil { promptTokenIDs = try Self.integers(chunk, field) }
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

  /// A repeated integer field's values, packed or not.
  private static func integers(_ bytes: [UInt8], _ field: WireField) throws(ProtoWireReader.Failure) -> [Int64] {
    guard field.wireType == .lengthDelimited else { return [Int64(truncatingIfNeeded: field.scalar)] }
    var reader = ProtoWireReader(bytes, range: field.range)
    var values: [Int64] = []
    while !reader.isAtEnd { values.append(Int64(truncatingIfNeeded: try reader.readVarint())) }
    return values
  }
}
