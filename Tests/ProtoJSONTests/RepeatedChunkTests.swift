import Testing

@testable import ProtoJSON

/// A stream's messages translated with what followed the head of its last message kept
/// (RepeatedChunk) are byte for byte what each translated alone would be, errors included: every
/// recorded stream, mutations of a kept chat chunk, texts whose lengths no longer fit one byte,
/// a head that changes, and streams whose messages change in more than one place.
@Suite struct RepeatedChunkTests {
  static let toProto = RepeatedHeadTests.toProto
  static let chunk = RepeatedHeadTests.chunk
  static let prefix = RepeatedHeadTests.prefix

  static func keeping(
    _ head: inout RepeatedHead, _ kept: inout RepeatedChunk, _ json: [UInt8], _ message: MessageSchema
  ) -> String {
    var output = prefix
    do {
      try toProto.append(from: json, message: message, to: &output, head: &head, chunk: &kept)
      #expect(output.starts(with: prefix))
      return "\(Array(output.dropFirst(prefix.count)))"
    } catch {
      return "error: \(error)"
    }
  }

  /// A chat chunk as vLLM streams one per token, with `text` as its token.
  static func chatChunk(_ text: String, index: Int = 0) -> [UInt8] {
    Array(
      (#"{"id":"chatcmpl-bc0a37ca0aa4398d","object":"chat.completion.chunk","created":1795574578,"#
        + #""model":"sim-model","choices":[{"index":\#(index),"delta":{"content":"\#(text)"},"logprobs":null,"#
        + #""finish_reason":null,"token_ids":null}]}"#).utf8)
  }

  /// The chunk of token " fox", with `target` replaced.
  static func foxChunk(replacing target: String, with replacement: String) -> [UInt8] {
    Array(String(decoding: chatChunk(" fox"), as: UTF8.self).replacingOccurrences(target, replacement).utf8)
  }

  static let roleChunk = Array(
    (#"{"id":"chatcmpl-bc0a37ca0aa4398d","object":"chat.completion.chunk","created":1795574578,"#
      + #""model":"sim-model","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"#
      + #""finish_reason":null}],"prompt_token_ids":null}"#).utf8)

  /// A stream's state after its role chunk and two tokens: a chunk kept.
  static func primed() -> (RepeatedHead, RepeatedChunk) {
    var head = RepeatedHead()
    var kept = RepeatedChunk()
    for json in [roleChunk, chatChunk(" The"), chatChunk(" fox")] {
      #expect(keeping(&head, &kept, json, chunk) == RepeatedHeadTests.alone(json, chunk))
    }
    return (head, kept)
  }

  @Test func recordedStreamsTranslateTheSameWithTheirLastChunkKept() throws {
    var written = 0
    var events = 0
    for recording in RecordedExchangeTests.exchanges where recording.isEventStream {
      let type = try #require(RecordedExchangeTests.types(for: recording.path)?.chunk)
      let message = try #require(Self.toProto.schema.message(type))
      var head = RepeatedHead()
      var kept = RepeatedChunk()
      for event in recording.eventData {
        let wasKept = kept.isKept
        let expected = RepeatedHeadTests.alone(event, message)
        #expect(Self.keeping(&head, &kept, event, message) == expected, "\(recording.name)")
        // A kept chunk that wrote this one is still kept; one that did not fit may have gone.
        if wasKept && kept.isKept { written += 1 }
        events += 1
      }
    }
    // Chat and completion streams send token after token that differ only in their text.
    #expect(written >= events / 4, "\(written) of \(events) events written from a kept chunk")
  }

  @Test func tokensAfterTheFirstAreWrittenFromTheKeptChunk() {
    var (head, kept) = Self.primed()
    #expect(kept.isKept)
    let texts = [" quick", "", " ü", " 狐狸", String(repeating: "a", count: 90), " brown", "x", "y", "\u{7F}"]
    for text in texts {
      let json = Self.chatChunk(text)
      var output: [UInt8] = []
      var probe = kept
      #expect(probe.write(json, as: Self.chunk, head: head, to: &output), "\(text)")
      #expect(Self.keeping(&head, &kept, json, Self.chunk) == RepeatedHeadTests.alone(json, Self.chunk), "\(text)")
    }
    #expect(kept.isKept)
  }

  @Test func textsTheKeptChunkCannotWriteAreTranslatedTheSame() {
    let (primedHead, primedKept) = Self.primed()
    let cases: [(json: [UInt8], fits: Bool)] = [
      // Escapes and control bytes are unescaped by the translator, not copied.
      (Self.chatChunk(#"say \"hi\""#), false),
      (Self.chatChunk(#"line\nbreak"#), false),
      (Self.chatChunk("tab\there"), false),
      // A length that would need a second varint byte.
      (Self.chatChunk(String(repeating: "b", count: 128)), false),
      // Anything else changed: the index, a value, an id, what follows the end.
      (Self.chatChunk(" fox", index: 1), false),
      (Self.foxChunk(replacing: "null}]}", with: "null}]} "), false),
      (Self.foxChunk(replacing: #""token_ids":null"#, with: #""token_ids":[5]"#), false),
      (Self.foxChunk(replacing: "chatcmpl-bc", with: "chatcmpl-bd"), false),
      (Array(Self.chatChunk(" fox").dropLast()), false),
      (Self.chatChunk(" fine"), true),
    ]
    for (json, fits) in cases {
      var head = primedHead
      var kept = primedKept
      var output: [UInt8] = []
      var probe = primedKept
      #expect(
        probe.write(json, as: Self.chunk, head: primedHead, to: &output) == fits,
        "\(String(decoding: json, as: UTF8.self))")
      if !fits { #expect(output.isEmpty) }
      #expect(
        Self.keeping(&head, &kept, json, Self.chunk) == RepeatedHeadTests.alone(json, Self.chunk),
        "\(String(decoding: json, as: UTF8.self))")
    }
  }

  @Test func textsUpToWhereALengthNeedsTwoBytesAreWrittenFromTheKeptChunk() {
    let (primedHead, primedKept) = Self.primed()
    var fitting: [Int] = []
    for count in 90...140 {
      let json = Self.chatChunk(String(repeating: "z", count: count))
      var head = primedHead
      var kept = primedKept
      var output: [UInt8] = []
      var probe = primedKept
      if probe.write(json, as: Self.chunk, head: primedHead, to: &output) { fitting.append(count) }
      #expect(Self.keeping(&head, &kept, json, Self.chunk) == RepeatedHeadTests.alone(json, Self.chunk), "\(count)")
    }
    // Texts fit while the choice's length (the text's, the delta's and the index's bytes) stays
    // under 128, then none does.
    #expect(fitting.first == 90 && fitting.count > 10 && fitting.last! < 127, "\(fitting)")
    #expect(fitting == Array(90...fitting.last!))
  }

  @Test func mutatedChunksTranslateTheSame() {
    let (primedHead, primedKept) = Self.primed()
    var generator = CanonicalJSONFuzzTests.Generator()
    let next = Self.chatChunk(" jumps")
    var written = 0
    let inputs = [next] + CanonicalJSONFuzzTests.mutations(of: next, count: 3000, generator: &generator)
    for input in inputs {
      var head = primedHead
      var kept = primedKept
      var output: [UInt8] = []
      var probe = primedKept
      if probe.write(input, as: Self.chunk, head: primedHead, to: &output) { written += 1 }
      #expect(
        Self.keeping(&head, &kept, input, Self.chunk) == RepeatedHeadTests.alone(input, Self.chunk),
        "\(String(decoding: input, as: UTF8.self))")
    }
    // Mutations inside the token's text keep fitting; those anywhere else do not.
    #expect(written > 0 && written < inputs.count / 4, "\(written) of \(inputs.count)")
  }

  /// A chunk offered borrowed (`appendKept`) is written as its copy would be when it fits; when
  /// it does not, nothing is written, and its copy translated with `keptTried` is what it would
  /// have been alone.
  @Test func borrowedChunksWriteWhatTheirCopiesWould() {
    let (primedHead, primedKept) = Self.primed()
    var generator = CanonicalJSONFuzzTests.Generator()
    let next = Self.chatChunk(" jumps")
    var taken = 0
    let inputs =
      [next, Self.chatChunk(String(repeating: "a", count: 90))]
      + CanonicalJSONFuzzTests.mutations(of: next, count: 1000, generator: &generator)
    for input in inputs {
      var head = primedHead
      var kept = primedKept
      var output = Self.prefix
      var result = ""
      if Self.toProto.appendKept(from: input.span, message: Self.chunk, to: &output, head: &head, chunk: &kept) {
        taken += 1
        result = "\(Array(output.dropFirst(Self.prefix.count)))"
      } else {
        #expect(output == Self.prefix)
        do {
          try Self.toProto.append(
            from: input, message: Self.chunk, to: &output, head: &head, chunk: &kept, keptTried: true)
          result = "\(Array(output.dropFirst(Self.prefix.count)))"
        } catch {
          result = "error: \(error)"
        }
      }
      #expect(result == RepeatedHeadTests.alone(input, Self.chunk), "\(String(decoding: input, as: UTF8.self))")
    }
    #expect(taken >= 2 && taken < inputs.count / 4, "\(taken) of \(inputs.count)")
  }

  /// A chunk that does not fit, offered borrowed and then translated as a copy with
  /// `keptTried`, is one miss: the kept chunk goes only after two in a row, as without the offer.
  @Test func aBorrowedMissCountsOnce() {
    var (head, kept) = Self.primed()
    let misfit = Self.chatChunk(" fox", index: 1)
    var output: [UInt8] = []
    for miss in 1...2 {
      #expect(!Self.toProto.appendKept(from: misfit.span, message: Self.chunk, to: &output, head: &head, chunk: &kept))
      #expect(throws: Never.self) {
        try Self.toProto.append(
          from: misfit, message: Self.chunk, to: &output, head: &head, chunk: &kept, keptTried: true)
      }
      #expect(kept.isKept == (miss < RepeatedChunk.missesBeforeDropping), "after \(miss) misses")
    }
  }

  @Test func aChunkKeptForOneMessageIsNotUsedForAnother() throws {
    let completion = try #require(Self.toProto.schema.message("vllmgateway.v1.Completion"))
    var (head, kept) = Self.primed()
    let json = Self.chatChunk(" fox")
    var output: [UInt8] = []
    var probe = kept
    #expect(!probe.write(json, as: completion, head: head, to: &output))
    #expect(output.isEmpty)
    #expect(Self.keeping(&head, &kept, json, completion) == RepeatedHeadTests.alone(json, completion))
  }

  @Test func aNewHeadIsWrittenWithTheKeptTail() {
    var (head, kept) = Self.primed()
    // Another id (a stream moved to another replica): its head is translated, then kept.
    for text in [" over", " the", " lazy"] {
      let json = Self.foxChunk(replacing: "chatcmpl-bc", with: "chatcmpl-ff").replacing(" fox", text)
      #expect(Self.keeping(&head, &kept, json, Self.chunk) == RepeatedHeadTests.alone(json, Self.chunk), "\(text)")
    }
    #expect(kept.isKept)
    var output: [UInt8] = []
    var probe = kept
    let next = Self.foxChunk(replacing: "chatcmpl-bc", with: "chatcmpl-ff")
    #expect(probe.write(next, as: Self.chunk, head: head, to: &output))
    #expect("\(output)" == RepeatedHeadTests.alone(next, Self.chunk))
  }

  @Test func aStreamWhoseHeadsNeverRepeatKeepsNothing() {
    var head = RepeatedHead()
    var kept = RepeatedChunk()
    // Every chunk its own id: what follows a head is learnt with the head of its own chunk,
    // which the next does not have; the head is given up on after a few, and with none kept
    // nothing is learnt any more.
    for index in 0..<12 {
      let json = Self.foxChunk(replacing: "chatcmpl-bc", with: "chatcmpl-\(index)")
      #expect(Self.keeping(&head, &kept, json, Self.chunk) == RepeatedHeadTests.alone(json, Self.chunk), "\(index)")
      if index >= 6 { #expect(!kept.isKept, "\(index)") }
    }
  }

  @Test func largeChunksAreNotKept() {
    var head = RepeatedHead()
    var kept = RepeatedChunk()
    let padding = String(repeating: "p", count: RepeatedChunk.largestKept)
    for text in [" a", " b", " c", " d"] {
      let json = Array(
        String(decoding: Self.chatChunk(text), as: UTF8.self).replacingOccurrences(
          #""token_ids":null"#, #""token_ids":null,"x_padding":"\#(padding)""#
        ).utf8)
      #expect(Self.keeping(&head, &kept, json, Self.chunk) == RepeatedHeadTests.alone(json, Self.chunk))
      #expect(!kept.isKept)
    }
    // The same chunks without the padding are kept.
    for text in [" a", " b", " c"] {
      _ = Self.keeping(&head, &kept, Self.chatChunk(text), Self.chunk)
    }
    #expect(kept.isKept)
  }

  /// Chunks whose JSON has a line break (whitespace between members) in their head or after
  /// their text translate the same and keep nothing, so a chunk that fits what is kept holds no
  /// line break: one offered as it lies in a read, unchecked for them, is then one event line.
  @Test func chunksWithLineBreaksKeepNothing() {
    let plain = String(decoding: Self.chatChunk(" a"), as: UTF8.self)
    // Each with whether its head (up to "choices") is free of them.
    let broken = [
      (plain.replacingOccurrences(of: #""object""#, with: "\n" + #""object""#), false),
      (plain.replacingOccurrences(of: #""model""#, with: "\t" + #""model""#), false),
      (plain.replacingOccurrences(of: #""logprobs""#, with: "\r\n" + #""logprobs""#), true),
    ]
    for (text, headIsPlain) in broken {
      var head = RepeatedHead()
      var kept = RepeatedChunk()
      for token in [" a", " b", " c", " d"] {
        let json = Array(text.replacingOccurrences(of: #"" a""#, with: "\"\(token)\"").utf8)
        #expect(Self.keeping(&head, &kept, json, Self.chunk) == RepeatedHeadTests.alone(json, Self.chunk))
        #expect(!kept.isKept, "\(text)")
        #expect((head.end(in: json, as: Self.chunk) != nil) == headIsPlain, "\(text)")
      }
    }
    func holdsControlByte(_ bytes: [UInt8]) -> Bool { JSONReader.holdsControlByte(bytes.span) }
    #expect(holdsControlByte(Array("0123456789abcde\u{1F}".utf8)))
    #expect(!holdsControlByte(Array("0123456789abcdef ~\u{7F}\u{80}ü".utf8)))
    for at in 0..<20 {
      var bytes = Array(repeating: UInt8(ascii: " "), count: 20)
      #expect(!holdsControlByte(bytes))
      bytes[at] = 0x0A
      #expect(holdsControlByte(bytes), "at \(at)")
    }
  }

  @Test func aStreamWhoseChunksChangeInTwoPlacesStopsLearning() {
    var head = RepeatedHead()
    var kept = RepeatedChunk()
    var everKept = 0
    // The index changes along with the text: no chunk written from a kept one fits the next.
    for index in 0..<40 {
      let json = Self.chatChunk(" t\(index)", index: index)
      #expect(Self.keeping(&head, &kept, json, Self.chunk) == RepeatedHeadTests.alone(json, Self.chunk))
      if kept.isKept { everKept += 1 }
    }
    #expect(!kept.isKept)
    // Each learning keeps a chunk for at most the two that miss it; learnings are limited.
    #expect(everKept <= RepeatedChunk.missesBeforeDropping * 3, "\(everKept)")
  }

  /// The kept lengths moved a word at a time are each length moved on its own, or nil when any
  /// leaves a one-byte varint: for every count, lengths at and near the ends of their range,
  /// and differences up to well past them either way.
  @Test func lengthsMovedTogetherAreEachMovedAlone() {
    let samples: [UInt8] = [0, 1, 2, 0x3F, 0x40, 0x41, 0x7D, 0x7E]
    for count in 0...RepeatedChunk.maximumLengths {
      for first in samples {
        for second in samples {
          let lengths = [first, second, 0x7E &- first, second / 2].prefix(count)
          let values = lengths.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * $1.offset) }
          for difference in -300...300 {
            let moved = lengths.map { Int($0) + difference }
            let expected: UInt32? =
              moved.allSatisfy { (0..<0x80).contains($0) }
              ? moved.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * $1.offset) } : nil
            #expect(
              RepeatedChunk.movedLengths(values, count: UInt8(count), by: difference) == expected,
              "\(Array(lengths)) by \(difference)")
          }
        }
      }
    }
  }
}

extension [UInt8] {
  fileprivate func replacing(_ target: String, _ replacement: String) -> [UInt8] {
    Array(String(decoding: self, as: UTF8.self).replacingOccurrences(target, replacement).utf8)
  }
}

extension String {
  fileprivate func replacingOccurrences(_ target: String, _ replacement: String) -> String {
    var result = ""
    var rest = Substring(self)
    while let range = rest.firstRange(of: target) {
      result += rest[..<range.lowerBound] + replacement
      rest = rest[range.upperBound...]
    }
    return result + rest
  }
}

/// A stream starts with the chunk another stream of its kind learnt (RepeatedChunks): its first
/// token, after its own role chunk, is written from it, byte for byte what it is alone, whatever
/// its own id; a stream whose chunks differ drops it and translates the same.
@Suite struct RepeatedChunksTests {
  static let chunk = RepeatedChunkTests.chunk

  /// `json` with the stream's id replaced.
  static func renamed(_ json: [UInt8], id: String) -> [UInt8] {
    Array(String(decoding: json, as: UTF8.self).replacingOccurrences("chatcmpl-bc0a37ca0aa4398d", id).utf8)
  }

  @Test func aNewStreamWritesItsFirstTokenFromTheChunkAnotherLearnt() {
    let shared = RepeatedChunks()
    #expect(!shared.forNewStream().isKept)
    let (_, learnt) = RepeatedChunkTests.primed()
    shared.learnt(learnt)
    for id in ["chatcmpl-0000000000000001", "chatcmpl-ffffffffffffffff", "chatcmpl-x"] {
      var head = RepeatedHead()
      var kept = shared.forNewStream()
      #expect(kept.isKept)
      let role = Self.renamed(RepeatedChunkTests.roleChunk, id: id)
      #expect(RepeatedChunkTests.keeping(&head, &kept, role, Self.chunk) == RepeatedHeadTests.alone(role, Self.chunk))
      for text in [" Once", " upon", String(repeating: "a", count: 60)] {
        let token = Self.renamed(RepeatedChunkTests.chatChunk(text), id: id)
        var output: [UInt8] = []
        var probe = kept
        #expect(probe.write(token, as: Self.chunk, head: head, to: &output), "\(id) \(text)")
        #expect(
          RepeatedChunkTests.keeping(&head, &kept, token, Self.chunk) == RepeatedHeadTests.alone(token, Self.chunk))
      }
      #expect(kept.isKept)
    }
  }

  @Test func aStreamWhoseChunksDifferTranslatesTheSame() {
    let shared = RepeatedChunks()
    let (_, learnt) = RepeatedChunkTests.primed()
    shared.learnt(learnt)
    var head = RepeatedHead()
    var kept = shared.forNewStream()
    // Another kind of chunk: the choice's index differs from the learnt one's.
    for json in [RepeatedChunkTests.roleChunk] + (0..<6).map({ RepeatedChunkTests.chatChunk(" w\($0)", index: 1) }) {
      #expect(RepeatedChunkTests.keeping(&head, &kept, json, Self.chunk) == RepeatedHeadTests.alone(json, Self.chunk))
    }
  }
}
