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

  @Test func refusesAnEndlessLine() {
    var parser = ServerSentEventParser(maximumEventSize: 64)
    #expect(throws: ServerSentEventParser.Failure.self) {
      try parser.feed([UInt8](repeating: UInt8(ascii: "x"), count: 100)) { _ in }
    }
  }
}
