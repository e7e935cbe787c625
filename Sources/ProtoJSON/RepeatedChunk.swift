/// A stream's last message, kept whole with the one string in it that changes from message to
/// message (a chat chunk's token text): a message that has the same bytes before that string's
/// text and the same bytes after its closing quote is that message's protobuf with the new text
/// in place and the lengths around it moved, written without reading its JSON. A chat chunk cost
/// about 2,600 instructions to translate with its head kept (RepeatedHead), most of a streamed
/// chunk's 5,300 in the gateway (tools/bench-callgrind --mode stream).
///
/// What is kept is checked when it is learnt: the message is translated again with one more byte
/// of text, and the kept message must write exactly that translation. The translator writes a
/// plain string's bytes as they are, and the messages around it as their lengths, so the
/// protobuf of any other plain text of the same place is the kept one with those lengths moved
/// by the difference, as long as each stays a one-byte varint (checked on every use).
public struct RepeatedChunk: Sendable {
  /// The message's JSON before the text, then from the text's closing quote on, then its
  /// protobuf.
  private var storage: [UInt8] = []
  private var prefixCount = 0
  private var suffixCount = 0
  /// Where the text starts in the protobuf, and its length there.
  private var protoText = 0
  private var textCount = 0
  /// Where in the protobuf the one-byte lengths that grow with the text lie: the string's own
  /// and those of the messages around it, sixteen bits each, innermost first.
  private var lengthPositions: UInt64 = 0
  private var lengthCount = 0
  /// The message it was learnt as.
  private var message: ObjectIdentifier? = nil
  /// Messages translated the general way since one was kept or last tried: a stream's first
  /// message (a chat stream's role) is not learnt from.
  private var translatedSince = 0
  /// Kept messages that did not fit in a row, and learnings still allowed: a stream whose
  /// messages change in more places than one stops trying after a few.
  private var misses = 0
  private var learningsLeft = 3

  static let maximumLengths = 4
  /// Larger messages are not kept: a stream holds what it keeps while it is open (a token's
  /// chunk is about 250 bytes of JSON).
  static let largestKept = 1024
  static let missesBeforeDropping = 2
  static let translationsBeforeLearning = 2

  public init() {}

  /// Whether a message is kept.
  var isKept: Bool { message != nil }

  /// Appends `json`'s translation to `output` when it fits the kept message, and answers
  /// whether it did; when it did not, `output` is as it was.
  mutating func write(_ json: [UInt8], as message: MessageSchema, to output: inout [UInt8]) -> Bool {
    guard let keptMessage = self.message else { return false }
    guard keptMessage == ObjectIdentifier(message), fits(json) else {
      misses += 1
      if misses >= Self.missesBeforeDropping { drop() }
      return false
    }
    misses = 0
    let textEnd = json.count &- suffixCount
    let difference = (textEnd &- prefixCount) &- textCount
    let protoStart = prefixCount &+ suffixCount
    var newLengths: UInt64 = 0
    for index in 0..<lengthCount {
      let length = Int(storage[protoStart &+ position(index)]) &+ difference
      guard length >= 0 && length < 0x80 else { return false }
      newLengths |= UInt64(length) << (8 &* UInt64(index))
    }
    let kept = storage
    let start = output.count
    output.append(contentsOf: kept[protoStart..<(protoStart &+ protoText)])
    for index in 0..<lengthCount {
      output[start &+ position(index)] = UInt8(truncatingIfNeeded: newLengths >> (8 &* UInt64(index)))
    }
    Self.appendShort(json, prefixCount..<textEnd, to: &output)
    Self.appendShort(kept, (protoStart &+ protoText &+ textCount)..<kept.count, to: &output)
    return true
  }

  /// Appends `source[range]`: a few bytes (a token, the end of a chunk) one by one in a single
  /// reservation, where a slice's copy costs a generic call and a retain and release of `source`.
  @inline(__always)
  private static func appendShort(_ source: [UInt8], _ range: Range<Int>, to output: inout [UInt8]) {
    guard range.count <= 24 else {
      output.append(contentsOf: source[range])
      return
    }
    let bytes = source.span
    output.append(addingCapacity: range.count) { output in
      for index in range { output.append(bytes[index]) }
    }
  }

  /// Whether `json` holds the kept bytes before and after a plain text.
  private func fits(_ json: [UInt8]) -> Bool {
    let textEnd = json.count &- suffixCount
    guard textEnd >= prefixCount else { return false }
    let input = json.span
    let kept = storage.span
    guard input.extracting(0..<prefixCount).hasSameBytes(as: kept.extracting(0..<prefixCount)) else { return false }
    guard JSONReader.plainStringEnd(of: json, from: prefixCount) == textEnd else { return false }
    return input.extracting(textEnd..<json.count).hasSameBytes(
      as: kept.extracting(prefixCount..<(prefixCount &+ suffixCount)))
  }

  private func position(_ index: Int) -> Int {
    Int(truncatingIfNeeded: (lengthPositions >> (16 &* UInt64(index))) & 0xFFFF)
  }

  private mutating func drop() {
    storage = []
    message = nil
    misses = 0
    translatedSince = 0
  }

  /// After `json` was translated the general way into `proto`: whether to learn from it now.
  mutating func shouldLearn() -> Bool {
    guard message == nil, learningsLeft > 0 else { return false }
    translatedSince += 1
    guard translatedSince >= Self.translationsBeforeLearning else { return false }
    translatedSince = 0
    learningsLeft -= 1
    return true
  }

  /// Keeps `json`, whose translation is `proto`, with its last plain string's text as the one
  /// that changes, when translating it with one more byte of text confirms what is kept.
  mutating func learn(
    _ json: [UInt8], proto: ArraySlice<UInt8>, as message: MessageSchema, translator: JSONToProto
  ) {
    guard json.count <= Self.largestKept,
      let template = ReplyTemplateLearner.learn(json, as: message, in: translator.schema),
      let step = template.steps.lastIndex(where: { $0.action == .string })
    else { return }
    let textStart = template.steps[step].run.upperBound
    let textEnd = template.steps[step &+ 1].run.lowerBound
    let proto = Array(proto)
    // One more byte of text, unlike the one before it, so that where it went shows.
    let marker: UInt8 =
      textEnd > textStart && json[textEnd &- 1] == UInt8(ascii: "x") ? UInt8(ascii: "y") : UInt8(ascii: "x")
    var longer = Array(json[..<textEnd])
    longer.append(marker)
    longer.append(contentsOf: json[textEnd...])
    guard let longerProto = try? translator.proto(from: longer, message: message),
      longerProto.count == proto.count &+ 1
    else { return }
    // The bytes the two share at their ends run up to the added byte.
    var shared = 0
    while shared < proto.count && proto[proto.count &- 1 &- shared] == longerProto[longerProto.count &- 1 &- shared] {
      shared &+= 1
    }
    let textCount = textEnd &- textStart
    let protoText = proto.count &- shared &- textCount
    guard protoText > 0, proto[protoText..<(protoText &+ textCount)].elementsEqual(json[textStart..<textEnd]) else {
      return
    }
    var positions: UInt64 = 0
    var count = 0
    for index in stride(from: protoText &- 1, through: 0, by: -1) where proto[index] != longerProto[index] {
      guard count < Self.maximumLengths, proto[index] < 0x7F, longerProto[index] == proto[index] &+ 1,
        index <= 0xFFFF
      else { return }
      positions |= UInt64(index) << (16 &* UInt64(count))
      count &+= 1
    }
    guard count > 0, positions & 0xFFFF == UInt64(protoText &- 1) else { return }
    var learnt = RepeatedChunk()
    learnt.storage.reserveCapacity(json.count &+ proto.count &- textCount)
    learnt.storage.append(contentsOf: json[..<textStart])
    learnt.storage.append(contentsOf: json[textEnd...])
    learnt.storage.append(contentsOf: proto)
    learnt.prefixCount = textStart
    learnt.suffixCount = json.count &- textEnd
    learnt.protoText = protoText
    learnt.textCount = textCount
    learnt.lengthPositions = positions
    learnt.lengthCount = count
    learnt.message = ObjectIdentifier(message)
    // What is kept must write both translations as the translator did.
    var check: [UInt8] = []
    guard learnt.write(longer, as: message, to: &check), check == longerProto else { return }
    check.removeAll(keepingCapacity: true)
    guard learnt.write(json, as: message, to: &check), check == proto else { return }
    learnt.learningsLeft = learningsLeft
    self = learnt
  }
}
