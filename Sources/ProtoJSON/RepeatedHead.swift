/// The leading members a stream's messages repeat (a chat chunk's `id`, `object`, `created` and
/// `model`, the same in every chunk of a stream): their JSON as an earlier message had it and the
/// protobuf they were translated to, in one array. A message whose JSON starts with the same
/// bytes, a comma next, gets that protobuf copied and is read on from the comma
/// (`JSONToProto.append(from:message:to:head:)`). The translation of members is a function of
/// their bytes alone (nulls dropped, unknown keys kept in place), so the copy is what translating
/// them again would write; the comma after them ends their last value, so a number cannot run on.
public struct RepeatedHead: Sendable {
  /// The head's JSON, from the object's `{` up to the comma, then its protobuf.
  private var storage: [UInt8] = []
  private var jsonCount = 0
  /// The key order position after the head, where the translator's key prediction resumes.
  private(set) var expectedKey = 0
  /// The message the head was translated as.
  private var message: ObjectIdentifier? = nil
  /// Heads kept one after another without the next message taking them: a stream whose heads
  /// do not repeat (a producer that stamps each message) stops keeping them after a few, rather
  /// than copying one on every message.
  private var replacedUnused = 0
  static let replacementsBeforeGivingUp = 3

  /// Whether a head is still worth noting for this stream.
  var isWanted: Bool { replacedUnused < Self.replacementsBeforeGivingUp }

  public init() {}

  /// Where the head's JSON ends in `json`, when `json` starts with it as `message`; else nil.
  func end(in json: [UInt8], as message: MessageSchema) -> Int? {
    end(in: json.span, as: message)
  }

  /// The same over borrowed bytes.
  func end(in json: Span<UInt8>, as message: MessageSchema) -> Int? {
    guard self.message == ObjectIdentifier(message), json.count > jsonCount,
      json[jsonCount] == UInt8(ascii: ",")
    else { return nil }
    let matches = json.extracting(0..<jsonCount).hasSameBytes(as: storage.span.extracting(0..<jsonCount))
    return matches ? jsonCount : nil
  }

  /// The head was taken by a message.
  mutating func noteTaken() {
    replacedUnused = 0
  }

  /// The head's protobuf.
  var proto: ArraySlice<UInt8> { storage[jsonCount...] }

  /// The head's protobuf, borrowed for `body`: a slice (`proto`) retains the array.
  @inline(__always)
  func withProto<Result>(_ body: (Span<UInt8>) -> Result) -> Result {
    body(storage.span.extracting(jsonCount..<storage.count))
  }

  /// Keeps `json`'s head, which ends at `mark`, and the protobuf `output` holds for it. A head
  /// whose JSON holds a control byte (a line break between its members) is not kept: a streamed
  /// chunk offered as it lies in a read has not been checked for line breaks (which end an
  /// event-stream line, see `ServerSentEventParser.wholeEventValue`), and one that starts with
  /// a kept head must be one line for that to be safe (`RepeatedChunk` checks the rest).
  mutating func remember(
    _ json: [UInt8], _ output: [UInt8], from start: Int, at mark: HeadMark, as message: MessageSchema
  ) {
    guard !JSONReader.holdsControlByte(json.span.extracting(0..<mark.jsonEnd)) else { return }
    if self.message != nil {
      replacedUnused += 1
      guard isWanted else {
        storage = []
        self.message = nil
        return
      }
    }
    storage.removeAll(keepingCapacity: true)
    // Exactly the bytes needed: a stream keeps this array as long as it is open.
    storage.reserveCapacity(mark.jsonEnd + mark.protoEnd - start)
    storage.append(contentsOf: json[..<mark.jsonEnd])
    storage.append(contentsOf: output[start..<mark.protoEnd])
    jsonCount = mark.jsonEnd
    expectedKey = mark.expectedKey
    self.message = ObjectIdentifier(message)
  }
}

/// Where a message's head (its members before the first object or array value) ends, noted as
/// the translator reads them: only for the top-level object of a message whose head is kept.
struct HeadMark {
  var isWanted: Bool
  private(set) var isFound = false
  private(set) var jsonEnd = 0
  private(set) var protoEnd = 0
  private(set) var expectedKey = 0

  init(isWanted: Bool) {
    self.isWanted = isWanted
  }

  /// The member that starts after `jsonEnd` holds an object or array: the head ends before it.
  /// Only a head of at least one member, followed directly by its comma, is kept.
  mutating func found(jsonEnd: Int, in json: [UInt8], protoEnd: Int, expectedKey: Int, objectStart: Int) {
    isWanted = false
    guard jsonEnd > objectStart + 1, jsonEnd < json.count, json[jsonEnd] == UInt8(ascii: ",") else { return }
    isFound = true
    self.jsonEnd = jsonEnd
    self.protoEnd = protoEnd
    self.expectedKey = expectedKey
  }
}
