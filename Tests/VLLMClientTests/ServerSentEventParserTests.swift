import Testing

@testable import VLLMClient

@Suite struct ServerSentEventParserTests {
  private func events(_ chunks: [String]) throws -> [ServerSentEvent] {
    var parser = ServerSentEventParser()
    var out: [ServerSentEvent] = []
    for chunk in chunks { try parser.feed(Array(chunk.utf8)) { out.append($0) } }
    return out
  }

  @Test func splitsDataEvents() throws {
    let got = try events(["data: {\"a\":1}\n\ndata: [DONE]\n\n"])
    #expect(got == [ServerSentEvent(data: Array("{\"a\":1}".utf8)), ServerSentEvent(data: Array("[DONE]".utf8))])
    #expect(got[1].isDone)
  }

  @Test func eventsSplitAcrossReadsAnywhere() throws {
    let stream = "event: response.created\ndata: {\"x\": \"y\"}\n\ndata: second\n\n"
    for cut in 1..<stream.utf8.count {
      let bytes = Array(stream.utf8)
      let got = try events([
        String(decoding: bytes[..<cut], as: UTF8.self), String(decoding: bytes[cut...], as: UTF8.self),
      ])
      #expect(got.count == 2)
      #expect(got.first?.event == "response.created")
      #expect(got.last?.data == Array("second".utf8))
    }
  }

  /// An event whose data line and blank line arrive in one read is dispatched in one step: it
  /// carries the name given before it and leaves none to the next, and it agrees with the line
  /// by line path (one byte a read) on values without a space, empty ones and data over lines.
  @Test func dispatchesWholeEventsAsLineByLine() throws {
    let stream = "event: delta\ndata: one\n\ndata:two\n\ndata\n\ndata: a\ndata: b\n\ndata: \n\ndata:  last\n\n"
    let whole = try events([stream])
    #expect(whole.map(\.event) == ["delta", nil, nil, nil, nil, nil])
    #expect(whole.map { String(decoding: $0.data, as: UTF8.self) } == ["one", "two", "", "a\nb", "", " last"])
    #expect(try events(stream.map { String($0) }) == whole)
  }

  /// Events offered borrowed (`onBorrowedEvent`): only an unnamed event whose one data line and
  /// blank line came in one read, with its data as it lay there; taken, it does not come again;
  /// declined, it comes as a copy, and every other event comes only so. Either way the events are
  /// those of the line by line path, in order.
  @Test func offersWholeUnnamedEventsBorrowed() throws {
    let stream = "data: one\n\nevent: named\ndata: two\n\ndata: a\ndata: b\n\ndata: three\n\ndata: four\r\n\r\n"
    for takes in [true, false] {
      var parser = ServerSentEventParser()
      var got: [(data: String, borrowed: Bool)] = []
      try Array(stream.utf8).withUnsafeBytes { bytes in
        try parser.feed(
          raw: bytes, receivedAt: 7,
          onBorrowedEvent: { data, receivedAt in
            #expect(receivedAt == 7)
            if takes { got.append((String(decoding: (0..<data.count).map { data[$0] }, as: UTF8.self), true)) }
            return takes
          }
        ) { event in got.append((String(decoding: event.data, as: UTF8.self), false)) }
      }
      #expect(got.map(\.data) == ["one", "two", "a\nb", "three", "four"])
      let borrowed = takes ? [true, false, false, true, false] : [false, false, false, false, false]
      #expect(got.map(\.borrowed) == borrowed)
    }
    // Cut anywhere, an event split between two reads comes as a copy, the others as before.
    for cut in 1..<stream.utf8.count {
      var parser = ServerSentEventParser()
      var got: [String] = []
      let bytes = Array(stream.utf8)
      for part in [Array(bytes[..<cut]), Array(bytes[cut...])] {
        try part.withUnsafeBytes { raw in
          try parser.feed(
            raw: raw,
            onBorrowedEvent: { data, _ in
              got.append(String(decoding: (0..<data.count).map { data[$0] }, as: UTF8.self))
              return true
            }
          ) { event in got.append(String(decoding: event.data, as: UTF8.self)) }
        }
      }
      #expect(got == ["one", "two", "a\nb", "three", "four"], "cut at \(cut)")
    }
  }

  /// A piece that is one `data:` line and a blank line, ended by bare LFs, gives its value as it
  /// lies, the event `feed` finds there when the value holds no line break; nothing for any
  /// other piece, or while an event is under way.
  @Test func wholeEventValuesAreTheEventsFeedFinds() throws {
    let wholes = [
      "data: one\n\n", "data:two\n\n", "data: \n\n", "data:\n\n", "data:  spaced\n\n", "data: {\"a\":1}\n\n",
    ]
    for whole in wholes {
      let parser = ServerSentEventParser()
      let value = Array(whole.utf8).withUnsafeBytes { parser.wholeEventValue($0).map { Array($0) } }
      #expect(value != nil, "\(whole)")
      let found = try events([whole]).map { String(decoding: $0.data, as: UTF8.self) }
      #expect(value.map { [String(decoding: $0, as: UTF8.self)] } == found, "\(whole)")
    }
    let others = [
      "data: one\r\n\r\n", "data: one\n", "data: one\n\n\n ", "event: x\ndata: one\n\n", ": comment\n\n",
      "dat: one\n\n", "data\n\n", "datum one\n\n", "\n\n", "",
    ]
    for other in others {
      let parser = ServerSentEventParser()
      #expect(Array(other.utf8).withUnsafeBytes { parser.wholeEventValue($0) } == nil, "\(other)")
    }
    // Line breaks inside are not looked for: the value runs to the last blank line.
    let unchecked = ServerSentEventParser()
    let value = Array("data: a\ndata: b\n\n".utf8).withUnsafeBytes { unchecked.wholeEventValue($0).map { Array($0) } }
    #expect(value == Array("a\ndata: b".utf8))
    // An event under way (a line, data, a name, a CR whose LF may follow) takes the next bytes.
    for underWay in ["data: x", "data: x\n", "event: x\n", "data: x\r"] {
      var parser = ServerSentEventParser()
      try Array(underWay.utf8).withUnsafeBytes { try parser.feed(raw: $0) { _ in } }
      #expect(Array("data: one\n\n".utf8).withUnsafeBytes { parser.wholeEventValue($0) } == nil, "\(underWay)")
    }
    // And one past the parser's limit goes through `feed`, which refuses it.
    let small = ServerSentEventParser(maximumEventSize: 8)
    #expect(Array("data: 0123456\n\n".utf8).withUnsafeBytes { small.wholeEventValue($0) } == nil)
  }

  @Test func joinsMultiLineDataAndIgnoresComments() throws {
    let got = try events([": keep-alive\ndata: line one\ndata:line two\nid: 7\nretry: 10\n\n"])
    #expect(got == [ServerSentEvent(data: Array("line one\nline two".utf8))])
  }

  /// Line ends are found a word at a time: every position of CR or LF within a word, and lines
  /// of every length around a word, must still split exactly.
  @Test func findsLineEndsAtEveryOffset() throws {
    for length in 0..<40 {
      for ending in ["\n\n", "\r\n\r\n", "\r\r"] {
        let payload = String(repeating: "x", count: length)
        let got = try events(["data: " + payload + ending + "data: after" + ending])
        #expect(got.map(\.data) == [Array(payload.utf8), Array("after".utf8)], "length \(length)")
      }
    }
  }

  @Test func acceptsCRLFAndCR() throws {
    #expect(try events(["data: a\r\n\r\ndata: b\r\rdata: c\r\n\r"]).map(\.data) == [[97], [98], [99]])
  }

  @Test func reportsAnUnfinishedEvent() throws {
    var parser = ServerSentEventParser()
    try parser.feed(Array("data: {\"partial\"".utf8)) { _ in Issue.record("no event expected") }
    #expect(parser.hasPartialEvent)
  }

  /// Parsers fed in turn with one lent storage: every event whole, however the reads cut the
  /// streams.
  @Test func parsersShareLentStorage() throws {
    let stream = Array("data: {\"x\": \"first\"}\n\ndata: second\ndata: more\n\n".utf8)
    for cut in 1..<stream.count {
      var spare: [UInt8] = []
      var parsers = [ServerSentEventParser(), ServerSentEventParser()]
      var got: [[ServerSentEvent]] = [[], []]
      for read in [stream[..<cut], stream[cut...]] {
        for index in parsers.indices {
          parsers[index].borrowStorage(from: &spare)
          try read.withUnsafeBytes { bytes in
            try parsers[index].feed(raw: bytes) { got[index].append($0) }
          }
          parsers[index].returnStorage(to: &spare)
        }
      }
      for events in got {
        #expect(events.map(\.data) == [Array("{\"x\": \"first\"}".utf8), Array("second\nmore".utf8)], "cut \(cut)")
      }
    }
  }

  /// A parser in the middle of an event keeps the storage its data is in; the next borrower
  /// makes its own, which it hands back.
  @Test func keepsLentStorageWhileAnEventIsPartlyRead() throws {
    var spare: [UInt8] = []
    spare.reserveCapacity(64)
    var parser = ServerSentEventParser()
    parser.borrowStorage(from: &spare)
    try parser.feed(Array("data: one\n".utf8)) { _ in Issue.record("no event expected") }
    parser.returnStorage(to: &spare)
    #expect(spare.capacity == 0)
    var other = ServerSentEventParser()
    other.borrowStorage(from: &spare)
    try other.feed(Array("data: x\n\n".utf8)) { #expect($0.data == [UInt8(ascii: "x")]) }
    other.returnStorage(to: &spare)
    #expect(spare.capacity > 0)
    var got: [ServerSentEvent] = []
    parser.borrowStorage(from: &spare)
    try parser.feed(Array("data: two\n\n".utf8)) { got.append($0) }
    parser.returnStorage(to: &spare)
    #expect(got.map(\.data) == [Array("one\ntwo".utf8)])
    #expect(spare.capacity > 0)
  }

  @Test func eventsJustUnderTheLimitFollowOneAnother() throws {
    // Each event is checked on its own: what the last one left in the parser's storage counts
    // for nothing, however the reads cut the stream.
    let event = "data: " + String(repeating: "y", count: 50) + "\n\n"
    let stream = Array(String(repeating: event, count: 4).utf8)
    for cut in [1, 7, 56, 57, 58, stream.count] {
      var parser = ServerSentEventParser(maximumEventSize: 64)
      var got: [ServerSentEvent] = []
      try parser.feed(stream[..<cut]) { got.append($0) }
      try parser.feed(stream[cut...]) { got.append($0) }
      #expect(got.map(\.data) == Array(repeating: Array(String(repeating: "y", count: 50).utf8), count: 4))
    }
  }

  @Test func refusesAnEndlessLine() {
    var parser = ServerSentEventParser(maximumEventSize: 64)
    #expect(throws: ServerSentEventParser.Failure.self) {
      try parser.feed([UInt8](repeating: UInt8(ascii: "x"), count: 100)) { _ in }
    }
  }
}
