import Fleet
import Gateway
import NIOCore
import ProtoJSON
import VLLMClient

/// libFuzzer entry point: arbitrary bytes as vLLM's side of one HTTP/1.1 exchange, read the
/// way the gateway reads it: the response parser, then the event-stream parser, then JSON to
/// protobuf for each event (as a chat chunk, alone, with the stream's repeated head kept, and
/// with what followed the head in its last chunk kept too, which must all agree) or for the
/// whole body (as a chat completion, and as a /metrics page the health checker reads). The
/// first byte picks where the input is cut into two reads, so split lines and frames get
/// exercised too. tools/fuzz builds and runs it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  FuzzedUpstreamResponse.run(Array(UnsafeBufferPointer(start: data, count: size))[...])
  return 0
}

enum FuzzedUpstreamResponse {
  /// The schema as the gateway reads vLLM's replies with: keys compared where vLLM puts them.
  static let toProto = JSONToProto(schema: .vllmOrdered)
  static let chunk = toProto.schema.message("vllmgateway.v1.ChatCompletionChunk")!
  static let completion = toProto.schema.message("vllmgateway.v1.ChatCompletion")!
  static let usageNumber = completion.fields[completion.fieldIndex(named: "usage")!].number

  static let shapes = ReplyShapes()
  static let sharedChunks = RepeatedChunks()
  /// The shape of a chat reply as vLLM 0.32 sends one (tests/fixtures/vllm-recordings).
  static let recordedShape = ReplyShapes(
    fixedFrom: Array(
      (#"{"id":"chatcmpl-86e24b3f5efaae84","object":"chat.completion","created":1795562984,"model":"tiny-llama","#
        + #""choices":[{"index":0,"message":{"role":"assistant","content":"ar ra quick","refusal":null,"#
        + #""annotations":null,"audio":null,"function_call":null,"reasoning":null},"logprobs":null,"#
        + #""finish_reason":"length","stop_reason":null,"token_ids":null,"routed_experts":null}],"#
        + #""service_tier":null,"system_fingerprint":"vllm-0.32.0-768d6f53","usage":{"prompt_tokens":65,"#
        + #""total_tokens":77,"completion_tokens":12,"prompt_tokens_details":null,"completion_tokens_details":null},"#
        + #""prompt_logprobs":null,"metrics":null}"#).utf8), as: completion, in: toProto.schema)

  /// Returns how many parser events the input produced.
  @discardableResult
  static func run(_ input: ArraySlice<UInt8>) -> Int {
    guard let control = input.first else { return 0 }
    let bytes = input.dropFirst()
    let cut = bytes.isEmpty ? bytes.startIndex : bytes.startIndex + Int(control) % (bytes.count + 1)
    var parser = HTTP1ResponseParser()
    var events = ServerSentEventParser(maximumEventSize: 1 << 16)
    var body: [UInt8] = []
    var count = 0
    // The events as a stream translates them, the head they repeat kept, and with it what
    // followed the head in the last chunk: always what each event translated alone gives.
    var head = RepeatedHead()
    var streamHead = RepeatedHead()
    var lastChunk = RepeatedChunk()
    // And as a stream takes events offered where they lie in the read (the gateway's own
    // connections): translated there when they fit the kept chunk, else declined and translated
    // from their copy. The events, however they came, are those a parser that offers none gives.
    // That stream starts with the chunk the inputs before it learnt, as a gateway's streams
    // start with their operation's (RepeatedChunks), and leaves what it learns to the next.
    var borrowedHead = RepeatedHead()
    var borrowedChunk = sharedChunks.forNewStream()
    defer { sharedChunks.learnt(borrowedChunk) }
    var keptMissed = false
    var offering = ServerSentEventParser(maximumEventSize: 1 << 16)
    var everyEvent: [[UInt8]] = []
    var everyCopiedEvent: [[UInt8]] = []
    // An event offered where it lies: taken when it fits the kept chunk, and then written as
    // its copy translates alone.
    func offer(_ data: Span<UInt8>) -> Bool {
      var written: [UInt8] = []
      let taken = toProto.appendKept(
        from: data, message: chunk, to: &written, head: &borrowedHead, chunk: &borrowedChunk)
      guard taken else {
        keptMissed = true
        return false
      }
      let copy = (0..<data.count).map { data[$0] }
      precondition(written == (try? toProto.proto(from: copy, message: chunk)), "a borrowed event changed")
      everyEvent.append(copy)
      return true
    }
    reading: for piece in [bytes[..<cut], bytes[cut...]] {
      var buffer = ByteBuffer(bytes: piece)
      do {
        while let event = try parser.next(&buffer) {
          count += 1
          let range: Range<Int>
          let isWholeChunk: Bool
          switch event {
          case .body(let body): (range, isWholeChunk) = (body, false)
          case .wholeChunk(let body): (range, isWholeChunk) = (body, true)
          case .head, .end: continue
          }
          // Behind the reader index, where NIO's getters answer nil.
          let part = buffer.withVeryUnsafeBytes { Array($0[range]) }
          body.append(contentsOf: part)
          // A whole chunk that looks like one event is offered as it lies, unparsed, as the
          // gateway's connections offer it (UpstreamExchange); declined, it is parsed without
          // being offered again. Taken, its data must be the one event a parser finds there.
          let offered =
            isWholeChunk
            ? part.withUnsafeBytes { raw in
              offering.wholeEventValue(raw).map { offer(Span(_unsafeBytes: $0)) }
            } : nil
          // Its own failure (the same as the parser's below, which ends the reading) leaves the
          // events before it in this part.
          if offered != true {
            try? part.withUnsafeBytes { raw in
              try offering.feed(
                raw: raw, onBorrowedEvent: { data, _ in offered == nil && offer(data) }
              ) { event in
                everyEvent.append(event.data)
                let alone = try? toProto.proto(from: event.data, message: chunk)
                var written: [UInt8] = []
                let fromCopy =
                  (try? toProto.append(
                    from: event.data, message: chunk, to: &written, head: &borrowedHead, chunk: &borrowedChunk,
                    keptTried: keptMissed)) != nil ? written : nil
                keptMissed = false
                precondition(fromCopy == alone, "a declined event's copy changed its translation")
              }
            }
          }
          try events.feed(part) { event in
            everyCopiedEvent.append(event.data)
            let alone = try? toProto.proto(from: event.data, message: chunk)
            var kept: [UInt8] = []
            let withHead =
              (try? toProto.append(from: event.data, message: chunk, to: &kept, head: &head)) != nil ? kept : nil
            precondition(withHead == alone, "a kept head changed an event's translation")
            var written: [UInt8] = []
            let withChunk =
              (try? toProto.append(
                from: event.data, message: chunk, to: &written, head: &streamHead, chunk: &lastChunk)) != nil
              ? written : nil
            precondition(withChunk == alone, "a kept chunk changed an event's translation")
          }
        }
      } catch {
        break reading
      }
    }
    precondition(everyEvent == everyCopiedEvent, "events offered borrowed differ from the copied ones")
    _ = parser.connectionClosed()
    // The body as vLLM's /metrics page: whatever it holds, a load within what a vLLM can report.
    if let load = VLLMLoad(prometheusText: body) {
      precondition(
        (0...VLLMLoad.mostWaiting).contains(load.waiting) && (0...1).contains(load.kvCacheUsage),
        "a /metrics page read as a load no vLLM reports")
    }
    // The body as a unary reply, the general way and by a shape: one learnt from a recorded
    // reply (which mutations of it fit), and the shapes learnt over the run. Always the same.
    let alone = try? toProto.proto(from: body, message: completion)
    precondition(recordedShape.hasShape, "the recorded reply has a shape")
    for shapes in [recordedShape, shapes] {
      var shaped: [UInt8] = []
      let byShape =
        (try? toProto.append(from: body, message: completion, to: &shaped, shapes: shapes)) != nil ? shaped : nil
      precondition(byShape == alone, "a reply's shape changed its translation")
      // Watching the usage field (as a unary call with keys or metrics does) writes the same,
      // and where it says the field is, a usage field is.
      var watched: [UInt8] = []
      do {
        if let at = try toProto.append(
          from: body, message: completion, to: &watched, shapes: shapes, watching: usageNumber)
        {
          var reader = ProtoWireReader(Array(watched[at...]))
          let field = try reader.next()
          precondition(
            field?.number == usageNumber && field?.wireType == .lengthDelimited,
            "the usage field is not where the reply's shape said")
        }
        precondition(watched == byShape, "watching a field changed a reply's translation")
      } catch {
        precondition(byShape == nil, "watching a field made a reply fail")
      }
    }
    return count
  }
}
