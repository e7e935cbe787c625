import ProtoJSON

/// What a streamed Responses call relayed from vLLM's /v1/responses has sent the client so far,
/// read from each event's protobuf as it leaves: the response's opening, its one message item and
/// text part, the text and how many deltas (tokens) that was, and the last sequence number. A
/// continuation elsewhere carries on from exactly here (see ResponsesContinuation); anything it
/// could not reproduce (reasoning, function calls, a second item or part, logprobs, an event it
/// does not know) makes the stream one that cannot move.
///
/// ResponseStreamEvent's variants: 1 and 2 response.created and .in_progress (the response is
/// field 1, the sequence number 2), 3 to 5 its ends, 6 output_item.added (item 1, output index 2,
/// sequence 3), 8 content_part.added (item id 1, output index 2, content index 3, part 4, sequence
/// 5), 10 output_text.delta (item id 1, output index 2, content index 3, delta 4, logprobs 5,
/// sequence 6); 7, 9 and 11 close the text, and the rest carry reasoning, function calls or
/// events the schema does not name (30).
package struct ResponsesProgress {
  /// The text of the message so far, in order.
  private(set) var text: [UInt8] = []
  /// Text deltas sent, which is one token each as vLLM streams most text.
  private(set) var tokens = 0
  /// The JSON of the last response.created or response.in_progress event: the response object
  /// the final response.completed is made from.
  private(set) var openingEvent: [UInt8]? = nil
  private(set) var sawInProgress = false
  /// The message item's id, once its output item and its text part were both announced.
  private(set) var itemID: String? = nil
  private var sawItem = false
  /// The last event's sequence number; the next event sent must have the one after it.
  private(set) var lastSequence: Int? = nil
  /// Set once something was sent that a continuation could not reproduce.
  private(set) var cannotContinue: String? = nil
  /// Set once the text was closed or the response ended: nothing is left to continue.
  private(set) var isFinished = false

  package init() {}

  /// Whether the message item was announced without its text part, which a continuation does
  /// not announce.
  var isBetweenItemAndPart: Bool { sawItem && itemID == nil }

  /// The sequence number of the next event.
  var nextSequence: Int { (lastSequence ?? -1) + 1 }

  /// Notes one event about to be sent to the client: its protobuf, and for the response's
  /// opening events their JSON.
  package mutating func note(event: [UInt8], range: Range<Int>? = nil, json: [UInt8]) {
    guard cannotContinue == nil else { return }
    do {
      var reader = ProtoWireReader(event, range: range)
      while let field = try reader.next() {
        guard field.wireType == .lengthDelimited else { continue }
        try note(variant: field.number, event, field.range, json: json)
      }
    } catch {
      cannotContinue = "an event did not parse"
    }
  }

  private mutating func note(
    variant: Int32, _ event: [UInt8], _ range: Range<Int>, json: [UInt8]
  ) throws(ProtoWireReader.Failure) {
    let sequenceField: Int32
    switch variant {
    case 1, 2:
      openingEvent = json
      if variant == 2 { sawInProgress = true }
      sequenceField = 2
    case 3, 4, 5, 7, 9, 11:
      isFinished = true
      return
    case 6:
      guard !sawItem else { return refuse("the response has several output items") }
      sawItem = true
      sequenceField = 3
      var reader = ProtoWireReader(event, range: range)
      while let field = try reader.next() {
        switch field.number {
        case 1 where !Self.isMessage(event, field.range):
          return refuse("the response's output is not a message")
        case 2 where field.scalar != 0:
          return refuse("the message is not the first output item")
        default:
          break
        }
      }
    case 8:
      guard sawItem, itemID == nil else { return refuse("the message has several content parts") }
      sequenceField = 5
      var reader = ProtoWireReader(event, range: range)
      var id: String? = nil
      while let field = try reader.next() {
        switch field.number {
        case 1: id = String(decoding: event[field.range], as: UTF8.self)
        case 2 where field.scalar != 0, 3 where field.scalar != 0:
          return refuse("the text is not the message's first part")
        case 4 where !Self.isOutputText(event, field.range): return refuse("the message's part is not output text")
        default: break
        }
      }
      itemID = id ?? ""
    case 10:
      guard itemID != nil else { return refuse("text came before its part") }
      sequenceField = 6
      var reader = ProtoWireReader(event, range: range)
      while let field = try reader.next() {
        switch field.number {
        case 4:
          text.append(contentsOf: event[field.range])
          tokens += 1
        case 5: return refuse("the text has logprobs")
        default: break
        }
      }
    default:
      return refuse("the response has an event a continuation cannot reproduce")
    }
    var reader = ProtoWireReader(event, range: range)
    while let field = try reader.next() {
      if field.number == sequenceField && field.wireType == .varint {
        lastSequence = Int(Int32(truncatingIfNeeded: field.scalar))
      }
    }
  }

  private mutating func refuse(_ reason: String) {
    cannotContinue = reason
  }

  /// Whether a ResponseItem holds a message (its field 1) and nothing else.
  private static func isMessage(_ bytes: [UInt8], _ range: Range<Int>) -> Bool {
    onlyField(1, in: bytes, range)
  }

  /// Whether a ResponseContent is output text (its field 2).
  private static func isOutputText(_ bytes: [UInt8], _ range: Range<Int>) -> Bool {
    onlyField(2, in: bytes, range)
  }

  private static func onlyField(_ number: Int32, in bytes: [UInt8], _ range: Range<Int>) -> Bool {
    var reader = ProtoWireReader(bytes, range: range)
    var found = false
    do {
      while let field = try reader.next() {
        guard field.number == number else { return false }
        found = true
      }
    } catch {
      return false
    }
    return found
  }
}
