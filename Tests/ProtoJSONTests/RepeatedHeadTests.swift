import Testing

@testable import ProtoJSON

/// A stream's messages translated with their repeated head kept (RepeatedHead) are byte for byte
/// what each translated alone would be, errors included: every recorded stream, mutations of a
/// chunk after the stream's first, and the heads that must not be taken.
@Suite struct RepeatedHeadTests {
  static let toProto = JSONToProto(schema: .bundled)
  static let chunk = toProto.schema.message("vllmgateway.v1.ChatCompletionChunk")!
  /// What the gateway's output holds before a message: the gRPC frame's five bytes.
  static let prefix: [UInt8] = [0, 0, 0, 0, 0]

  /// The protobuf, or the error's text.
  static func alone(_ json: [UInt8], _ message: MessageSchema) -> String {
    do {
      return "\(try toProto.proto(from: json, message: message))"
    } catch {
      return "error: \(error)"
    }
  }

  static func keeping(_ head: inout RepeatedHead, _ json: [UInt8], _ message: MessageSchema) -> String {
    var output = prefix
    do {
      try toProto.append(from: json, message: message, to: &output, head: &head)
      #expect(output.starts(with: prefix))
      return "\(Array(output.dropFirst(prefix.count)))"
    } catch {
      return "error: \(error)"
    }
  }

  @Test func recordedStreamsTranslateTheSameWithTheirHeadKept() throws {
    var reused = 0
    var events = 0
    for recording in RecordedExchangeTests.exchanges where recording.isEventStream {
      let type = try #require(RecordedExchangeTests.types(for: recording.path)?.chunk)
      let message = try #require(Self.toProto.schema.message(type))
      var head = RepeatedHead()
      for event in recording.eventData {
        if head.end(in: event, as: message) != nil { reused += 1 }
        #expect(Self.keeping(&head, event, message) == Self.alone(event, message), "\(recording.name)")
        events += 1
      }
    }
    // Chat and completion chunks repeat their heads; the Responses events do not.
    #expect(reused >= events / 2, "\(reused) of \(events) events reused a head")
  }

  @Test func mutatedChunksAfterTheFirstTranslateTheSame() {
    let first = Array(
      #"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1795574578,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#
        .utf8)
    let next = Array(
      #"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1795574578,"model":"m","choices":[{"index":0,"delta":{"content":" fox"},"logprobs":null,"finish_reason":null}],"x_extra":{"a":1}}"#
        .utf8)
    var primed = RepeatedHead()
    _ = Self.keeping(&primed, first, Self.chunk)
    #expect(primed.end(in: next, as: Self.chunk) != nil)
    var generator = CanonicalJSONFuzzTests.Generator()
    var reused = 0
    let inputs = [next] + CanonicalJSONFuzzTests.mutations(of: next, count: 2000, generator: &generator)
    for input in inputs {
      var head = primed
      if head.end(in: input, as: Self.chunk) != nil { reused += 1 }
      #expect(
        Self.keeping(&head, input, Self.chunk) == Self.alone(input, Self.chunk),
        "\(String(decoding: input, as: UTF8.self))")
    }
    // Mutations past the head keep it; those in it do not.
    #expect(reused > inputs.count / 4 && reused < inputs.count)
  }

  @Test func aHeadIsOnlyTakenWhereItEndsAsItDid() {
    let cases: [(first: String, next: String, reused: Bool)] = [
      // A number that runs on past the kept head's end is another number.
      (#"{"id":"a","created":17,"choices":[]}"#, #"{"id":"a","created":175,"choices":[]}"#, false),
      // Nothing kept after a head that a space ends.
      (#"{"id":"a" ,"choices":[]}"#, #"{"id":"a" ,"choices":[]}"#, false),
      // No head before a first member that is an array.
      (#"{"choices":[],"id":"a"}"#, #"{"choices":[],"id":"a"}"#, false),
      // The same head, then anything: members of any kind, or the object's end right away.
      (#"{"id":"a","model":"m","choices":[]}"#, #"{"id":"a","model":"m","usage":{"prompt_tokens":3}}"#, true),
      (#"{"id":"a","model":"m","choices":[]}"#, #"{"id":"a","model":"m","created":5}"#, true),
      (#"{"id":"a","model":null,"choices":[]}"#, #"{"id":"a","model":null,"unknown":[1,{"b":null}]}"#, true),
      (#"{"id":"a","extra":"kept","choices":[]}"#, #"{"id":"a","extra":"kept","choices":[{"index":2}]}"#, true),
      // The same head, then bytes that are not JSON: the same error as alone.
      (#"{"id":"a","choices":[]}"#, #"{"id":"a",}"#, true),
      (#"{"id":"a","choices":[]}"#, #"{"id":"a","choices":[]}x"#, true),
      (#"{"id":"a","choices":[]}"#, #"{"id":"a","#, true),
    ]
    for (first, next, reused) in cases {
      var head = RepeatedHead()
      _ = Self.keeping(&head, Array(first.utf8), Self.chunk)
      #expect((head.end(in: Array(next.utf8), as: Self.chunk) != nil) == reused, "\(first) then \(next)")
      #expect(Self.keeping(&head, Array(next.utf8), Self.chunk) == Self.alone(Array(next.utf8), Self.chunk), "\(next)")
    }
  }

  @Test func aHeadKeptForOneMessageIsNotTakenForAnother() throws {
    let completion = try #require(Self.toProto.schema.message("vllmgateway.v1.Completion"))
    let json = Array(#"{"id":"a","object":"o","choices":[]}"#.utf8)
    var head = RepeatedHead()
    _ = Self.keeping(&head, json, Self.chunk)
    #expect(head.end(in: json, as: Self.chunk) != nil)
    #expect(head.end(in: json, as: completion) == nil)
    #expect(Self.keeping(&head, json, completion) == Self.alone(json, completion))
  }

  @Test func aStreamWhoseHeadsNeverRepeatStopsKeepingThem() {
    func message(_ index: Int) -> [UInt8] { Array(#"{"id":"a\#(index)","choices":[{"index":0}]}"#.utf8) }
    var head = RepeatedHead()
    for index in 0..<10 {
      #expect(Self.keeping(&head, message(index), Self.chunk) == Self.alone(message(index), Self.chunk))
      // Kept while replaced fewer than three times in a row; then nothing is kept any more.
      #expect((head.end(in: message(index), as: Self.chunk) != nil) == (index < 3), "\(index)")
    }
    // A head taken in between starts the count again.
    var taken = RepeatedHead()
    for index in [0, 1, 1, 2, 3, 3, 4, 5] {
      _ = Self.keeping(&taken, message(index), Self.chunk)
    }
    #expect(taken.end(in: message(5), as: Self.chunk) != nil)
  }
}
