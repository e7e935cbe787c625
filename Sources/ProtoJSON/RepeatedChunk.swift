import Synchronization

/// What follows a stream's repeated head (`RepeatedHead`) in its last message, with the one
/// string in it that changes from message to message (a chat chunk's token text): a message
/// whose head is the kept one, with the same bytes after it up to that string's text and the
/// same bytes from the text's closing quote on, is the head's protobuf, then the kept protobuf
/// with the new text in place and the lengths around it moved, written without reading its JSON.
/// A chat chunk cost about 2,800 instructions to translate with its head kept, more than half of
/// a streamed chunk in the gateway (translation-bench, tools/bench-callgrind --mode stream).
///
/// What is kept is checked when it is learnt: the message is translated again with one more byte
/// of text, and the head and the kept part must write exactly that translation, and the
/// message's own. The translator writes a plain string's bytes as they are and the messages
/// around it as their lengths, so the protobuf of any other plain text in the same place is the
/// kept one with those lengths moved by the difference, as long as each stays a one-byte varint
/// (checked on every use).
///
/// Nothing after the head names the stream (a chat chunk's id and creation time are in its head),
/// so streams of one kind keep the same bytes: they share one copy (`SharedTails`), and a stream
/// adds no more than this struct's few words to what its head already holds.
public struct RepeatedChunk: Sendable {
  /// After the head: the JSON up to the text, then from the text's closing quote on, then the
  /// protobuf after the head's.
  private var tail: [UInt8] = []
  /// The message it was learnt as.
  private var message: ObjectIdentifier? = nil
  /// Where in the tail's protobuf the one-byte lengths that grow with the text lie (the
  /// string's, then those of the messages around it), sixteen bits each, and their values in
  /// the kept protobuf, eight bits each.
  private var lengthPositions: UInt64 = 0
  private var lengthValues: UInt32 = 0
  private var lengthCount: UInt8 = 0
  /// A one in the low bit of each byte of the tail's protobuf that is a length, for those among
  /// its first eight bytes: a move of the lengths as one word (see `write`).
  private var lengthLanes: UInt64 = 0
  private var prefixCount: UInt16 = 0
  private var suffixCount: UInt16 = 0
  /// Where the text starts in the tail's protobuf, and its length there.
  private var protoText: UInt16 = 0
  private var textCount: UInt8 = 0
  /// Messages translated the general way since one was kept or last tried: a stream's first
  /// message (a chat stream's role) is not learnt from.
  private var translatedSince: UInt8 = 0
  /// Kept messages that did not fit in a row, and learnings still allowed: a stream whose
  /// messages change in more places than one stops trying after a few.
  private var misses: UInt8 = 0
  private var learningsLeft: UInt8 = 3

  static let maximumLengths = 4
  static let missesBeforeDropping = 2
  static let translationsBeforeLearning = 2
  /// Larger messages are not learnt from (a token's chat chunk is about 250 bytes of JSON).
  static let largestKept = 1024
  /// What follows the head is copied byte by byte up to this many bytes, else a run at a time.
  static let longestWrittenByteByByte = 32

  public init() {}

  /// Whether a message's tail is kept.
  public var isKept: Bool { message != nil }

  /// Appends `json`'s translation to `output` when its head is `head`'s and the rest fits the
  /// kept tail, and answers whether it did; when it did not, `output` is as it was.
  mutating func write(_ json: [UInt8], as message: MessageSchema, head: RepeatedHead, to output: inout [UInt8]) -> Bool
  {
    write(json.span, as: message, head: head, to: &output)
  }

  /// The same from borrowed bytes (a streamed event read where it lies).
  mutating func write(_ json: Span<UInt8>, as message: MessageSchema, head: RepeatedHead, to output: inout [UInt8])
    -> Bool
  {
    guard let keptMessage = self.message else { return false }
    guard keptMessage == ObjectIdentifier(message), let headEnd = head.end(in: json, as: message),
      let textEnd = fits(json, from: headEnd)
    else {
      misses &+= 1
      if misses >= Self.missesBeforeDropping { drop() }
      return false
    }
    misses = 0
    let difference = (textEnd &- headEnd &- Int(prefixCount)) &- Int(textCount)
    guard let newLengths = Self.movedLengths(lengthValues, count: lengthCount, by: difference) else { return false }
    let protoStart = Int(prefixCount) &+ Int(suffixCount)
    let keptBefore = protoStart..<(protoStart &+ Int(protoText))
    let text = (headEnd &+ Int(prefixCount))..<textEnd
    let keptAfter = (keptBefore.upperBound &+ Int(textCount))..<tail.count
    let total = keptBefore.count &+ text.count &+ keptAfter.count
    guard total <= Self.longestWrittenByteByByte else {
      output.append(contentsOf: head.proto)
      writeLong(json, text, keptBefore, keptAfter, newLengths, to: &output)
      return true
    }
    // A token's chunk after its head is a few bytes: its lengths, the token, perhaps a closing
    // field. Written one by one in a single reservation, with the lengths set in place, where
    // three copies and a patch cost a generic call and a uniqueness check each (about 150
    // instructions a chunk, callgrind). The head's protobuf goes into the same reservation, a
    // word at a time: appended as a slice of the head's array, it cost a generic call, a memcpy
    // call and a retain and release of the array (about 190 instructions a chunk, callgrind).
    let kept = tail.span
    let input = json
    let lengthCount = Int(self.lengthCount)
    let positions = lengthPositions
    // Up to eight kept bytes before the text (a chat chunk's six to eight: the tags and lengths
    // of its choice, delta and content) are read as one word and their lengths moved in it by
    // one add or subtract, which cannot carry between bytes (see `movedLengths`): copying them
    // one by one and then setting each length cost about 100 instructions a chunk (callgrind).
    let beforeInWord = keptBefore.count <= 8 && keptBefore.lowerBound &+ 8 <= kept.count
    let lanes = lengthLanes
    head.withProto { headProto in
      output.append(addingCapacity: headProto.count &+ total) { written in
        written.append(copying: headProto)
        let start = written.count
        if beforeInWord {
          var word = UInt64(littleEndian: kept.bytes.word(at: keptBefore.lowerBound))
          let move = UInt64(truncatingIfNeeded: difference.magnitude) &* lanes
          word = difference >= 0 ? word &+ move : word &- move
          for _ in keptBefore {
            written.append(UInt8(truncatingIfNeeded: word))
            word &>>= 8
          }
        } else {
          for index in keptBefore { written.append(kept[index]) }
          for index in 0..<lengthCount {
            written[start &+ Self.position(index, in: positions)] = Self.length(index, in: newLengths)
          }
        }
        for index in text { written.append(input[index]) }
        for index in keptAfter { written.append(kept[index]) }
      }
    }
    return true
  }

  /// The kept bytes around the text past `longestWrittenByteByByte`, copied a run at a time.
  private func writeLong(
    _ json: Span<UInt8>, _ text: Range<Int>, _ keptBefore: Range<Int>, _ keptAfter: Range<Int>, _ newLengths: UInt32,
    to output: inout [UInt8]
  ) {
    let start = output.count
    output.append(contentsOf: tail[keptBefore])
    // One uniqueness check for the three or so stores, not one each.
    var written = output.mutableSpan
    for index in 0..<Int(lengthCount) {
      written[start &+ Self.position(index, in: lengthPositions)] = Self.length(index, in: newLengths)
    }
    output.append(addingCapacity: text.count) { written in written.append(copying: json.extracting(text)) }
    output.append(contentsOf: tail[keptAfter])
  }

  /// Where the text ends in `json` when, from `headEnd`, it holds the kept bytes before and
  /// after a plain text.
  private func fits(_ json: Span<UInt8>, from headEnd: Int) -> Int? {
    let textStart = headEnd &+ Int(prefixCount)
    let textEnd = json.count &- Int(suffixCount)
    guard textEnd >= textStart else { return nil }
    let input = json
    let kept = tail.span
    guard input.extracting(headEnd..<textStart).hasSameBytes(as: kept.extracting(0..<Int(prefixCount))),
      JSONReader.plainStringEnd(of: json, from: textStart) == textEnd,
      input.extracting(textEnd..<json.count).hasSameBytes(
        as: kept.extracting(Int(prefixCount)..<(Int(prefixCount) &+ Int(suffixCount))))
    else { return nil }
    return textEnd
  }

  /// The tail's protobuf position of length `index` (relative to where the head's protobuf
  /// ends), from `lengthPositions` or a copy of it. Masking shifts: `index` is below
  /// `maximumLengths`, and a plain shift checked its amount against the word's width.
  private static func position(_ index: Int, in positions: UInt64) -> Int {
    Int(truncatingIfNeeded: (positions &>> (16 &* UInt64(index))) & 0xFFFF)
  }

  /// Length `index`'s new value, from the lengths packed eight bits each.
  private static func length(_ index: Int, in lengths: UInt32) -> UInt8 {
    UInt8(truncatingIfNeeded: lengths &>> (8 &* UInt32(index)))
  }

  /// The kept lengths (`lengthValues`, `count` of them) moved by `difference`, all in one word:
  /// nil when one would leave 0..<0x80, a one-byte varint. Each kept length is below 0x7F (see
  /// `learn`), so for a difference within -0x7F...0x7F no byte carries or borrows into the next.
  /// A loop over the lengths cost about 50 instructions a chunk (callgrind).
  @inline(__always)
  static func movedLengths(_ values: UInt32, count: UInt8, by difference: Int) -> UInt32? {
    // One in the low bit of each of the `count` bytes in use.
    let lanes = UInt32(truncatingIfNeeded: (0x01_0101_0100 as UInt64) &>> (40 &- 8 &* UInt64(count)))
    let highBits = lanes &* 0x80
    // Past that, any length leaves the range (and there is always one: see `learn`).
    guard difference > -0x80 && difference < 0x80 else { return count == 0 ? 0 : nil }
    if difference >= 0 {
      let moved = values &+ lanes &* UInt32(truncatingIfNeeded: difference)
      return moved & highBits == 0 ? moved : nil
    }
    // Each byte counts down from 0x80 plus its length: its high bit stays set while the length
    // minus the shrinkage is not negative, and the rest of it is that length.
    let moved = (values | highBits) &- lanes &* UInt32(truncatingIfNeeded: -difference)
    return moved & highBits == highBits ? moved ^ highBits : nil
  }

  /// The kept chunk as a new stream starts with it (see `RepeatedChunks`): its misses and
  /// learnings counted afresh.
  func forNewStream() -> RepeatedChunk {
    var fresh = self
    fresh.misses = 0
    fresh.translatedSince = 0
    fresh.learningsLeft = RepeatedChunk().learningsLeft
    return fresh
  }

  private mutating func drop() {
    tail = []
    message = nil
    misses = 0
    translatedSince = 0
  }

  /// After a message was translated the general way: whether to learn from it now.
  mutating func shouldLearn() -> Bool {
    guard message == nil, learningsLeft > 0 else { return false }
    translatedSince &+= 1
    guard translatedSince >= Self.translationsBeforeLearning else { return false }
    translatedSince = 0
    learningsLeft &-= 1
    return true
  }

  /// Keeps what follows `head` in `json`, whose translation is `proto`, with its last plain
  /// string's text as the one that changes, when translating it with one more byte of text
  /// confirms what is kept.
  mutating func learn(
    _ json: [UInt8], proto: ArraySlice<UInt8>, as message: MessageSchema, head: RepeatedHead,
    translator: JSONToProto
  ) {
    // The head's protobuf only once the head is known to be this message's (a head given up
    // on holds none).
    // No control byte in what is kept, as in the head (see `RepeatedHead.remember`): a chunk
    // that fits what is kept is then one event-stream line, its text being plain.
    guard json.count <= Self.largestKept, !JSONReader.holdsControlByte(json.span),
      let headEnd = head.end(in: json, as: message),
      case let headProto = head.proto, proto.starts(with: headProto),
      let template = ReplyTemplateLearner.learn(json, as: message, in: translator.schema),
      let step = template.steps.lastIndex(where: { $0.action == .string })
    else { return }
    let textStart = template.steps[step].run.upperBound
    let textEnd = template.steps[step &+ 1].run.lowerBound
    let textCount = textEnd &- textStart
    guard textStart > headEnd, textCount < 0x80 else { return }
    let proto = Array(proto)
    // One more byte of text, unlike the one before it, so that where it went shows.
    let marker = textCount > 0 && json[textEnd &- 1] == UInt8(ascii: "x") ? UInt8(ascii: "y") : UInt8(ascii: "x")
    var longer: [UInt8] = []
    longer.reserveCapacity(json.count &+ 1)
    longer.append(contentsOf: json[..<textEnd])
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
    let protoText = proto.count &- shared &- textCount
    guard protoText > headProto.count,
      proto[protoText..<(protoText &+ textCount)].elementsEqual(json[textStart..<textEnd])
    else { return }
    // The bytes that differ before the text are the lengths that grow with it, innermost first;
    // none may lie in the head.
    var positions: UInt64 = 0
    var values: UInt32 = 0
    var count = 0
    for index in stride(from: protoText &- 1, through: headProto.count, by: -1) where proto[index] != longerProto[index]
    {
      guard count < Self.maximumLengths, proto[index] < 0x7F, longerProto[index] == proto[index] &+ 1 else { return }
      positions |= UInt64(index &- headProto.count) << (16 &* UInt64(count))
      values |= UInt32(proto[index]) << (8 &* UInt32(count))
      count &+= 1
    }
    guard count > 0, positions & 0xFFFF == UInt64(protoText &- 1 &- headProto.count),
      proto[..<headProto.count].elementsEqual(longerProto[..<headProto.count])
    else { return }
    var tail: [UInt8] = []
    tail.reserveCapacity(json.count &- headEnd &- textCount &+ proto.count &- headProto.count)
    tail.append(contentsOf: json[headEnd..<textStart])
    tail.append(contentsOf: json[textEnd...])
    tail.append(contentsOf: proto[headProto.count...])
    var learnt = RepeatedChunk()
    learnt.tail = SharedTails.shared(tail)
    learnt.prefixCount = UInt16(textStart &- headEnd)
    learnt.suffixCount = UInt16(json.count &- textEnd)
    learnt.protoText = UInt16(protoText &- headProto.count)
    learnt.textCount = UInt8(textCount)
    learnt.lengthPositions = positions
    learnt.lengthValues = values
    learnt.lengthCount = UInt8(count)
    for index in 0..<count where Self.position(index, in: positions) < 8 {
      learnt.lengthLanes |= 1 &<< (8 &* UInt64(Self.position(index, in: positions)))
    }
    learnt.message = ObjectIdentifier(message)
    // What is kept must write both translations as the translator did.
    var check: [UInt8] = []
    guard learnt.write(longer, as: message, head: head, to: &check), check == longerProto else { return }
    check.removeAll(keepingCapacity: true)
    guard learnt.write(json, as: message, head: head, to: &check), check == proto else { return }
    learnt.learningsLeft = learningsLeft
    self = learnt
  }
}

/// The tails streams learnt last, for a stream that learns the same bytes to share their
/// storage: the streams of one kind of request keep one copy between them. A few are held, the
/// oldest replaced first; looked up only when a stream learns (once or so per stream).
enum SharedTails {
  private static let recent = Mutex<[[UInt8]]>([])
  static let kept = 8

  static func shared(_ tail: [UInt8]) -> [UInt8] {
    recent.withLock { recent in
      if let same = recent.first(where: { $0 == tail }) { return same }
      if recent.count >= kept { recent.removeFirst() }
      recent.append(tail)
      return tail
    }
  }
}
