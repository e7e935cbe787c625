import NIOCore
import Testing

@testable import VLLMClient

@Suite struct HTTP1ResponseParserTests {
  /// What the parser reported, flattened: the head, the body's bytes joined, and whether it ended.
  private struct Parsed: Equatable {
    var status = 0
    var contentType = ""
    var keepAlive = false
    var body: [UInt8] = []
    /// Pieces of the body that were whole chunks.
    var wholeChunks = 0
    var ended = false
  }

  private func parse(_ pieces: [[UInt8]], closeAfter: Bool = false) throws -> Parsed {
    var parser = HTTP1ResponseParser()
    var parsed = Parsed()
    for piece in pieces {
      var buffer = ByteBuffer(bytes: piece)
      while let event = try parser.next(&buffer) {
        switch event {
        case .head(let status, let contentType, let keepAlive):
          parsed.status = status
          parsed.contentType = contentType
          parsed.keepAlive = keepAlive
        case .body(let range):
          // Behind the reader index, where NIO's getters answer nil.
          parsed.body += buffer.withVeryUnsafeBytes { Array($0[range]) }
        case .wholeChunk(let range):
          parsed.body += buffer.withVeryUnsafeBytes { Array($0[range]) }
          parsed.wholeChunks += 1
        case .end:
          parsed.ended = true
        }
      }
    }
    if closeAfter && parser.connectionClosed() { parsed.ended = true }
    return parsed
  }

  /// The response cut at every position into two reads must parse like the whole.
  private func parseSplitEverywhere(_ text: String, closeAfter: Bool = false) throws -> Parsed {
    let bytes = Array(text.utf8)
    let whole = try parse([bytes], closeAfter: closeAfter)
    for cut in 1..<bytes.count {
      // A chunk cut by the reads comes in pieces rather than whole; the bytes are the same.
      var split = try parse([Array(bytes[..<cut]), Array(bytes[cut...])], closeAfter: closeAfter)
      split.wholeChunks = whole.wholeChunks
      #expect(split == whole, "cut at \(cut)")
    }
    return whole
  }

  /// The four headers the parser reads are known by their exact names in any case: a name with
  /// any one byte changed (to the other case, a neighbour, a dash, a CR or an underscore) is
  /// another header and ignored, unless the change was only of a letter's case.
  @Test func knownHeaderNamesMatchExactlyInAnyCase() throws {
    let responses: [(name: String, rest: String)] = [
      ("content-length", ": 3\r\n\r\nabc"),
      ("transfer-encoding", ": chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
      ("content-type", ": text/plain\r\ncontent-length: 0\r\n\r\n"),
      ("connection", ": close\r\ncontent-length: 0\r\n\r\n"),
    ]
    for (name, rest) in responses {
      let head = Array("HTTP/1.1 200 OK\r\n".utf8)
      let known = try parse([head + Array(name.utf8) + Array(rest.utf8)])
      let unknown = try parse([head + Array("x-other".utf8) + Array(rest.utf8)])
      #expect(known != unknown, "\(name) changes nothing")
      for position in name.utf8.indices {
        let original = name.utf8[position]
        for replacement in [original ^ 0x20, original ^ 0x01, UInt8(ascii: "-"), 0x0D, UInt8(ascii: "_")] {
          var changed = Array(name.utf8)
          changed[name.utf8.distance(from: name.utf8.startIndex, to: position)] = replacement
          let isSameName = replacement == original || (original >= UInt8(ascii: "a") && replacement == original ^ 0x20)
          let parsed = try parse([head + changed + Array(rest.utf8)])
          #expect(
            parsed == (isSameName ? known : unknown),
            "\(String(decoding: changed, as: UTF8.self).debugDescription) read as \(isSameName ? "" : "not ")\(name)")
        }
      }
    }
  }

  @Test func contentLengthBody() throws {
    let parsed = try parseSplitEverywhere(
      "HTTP/1.1 200 OK\r\ndate: x\r\nContent-Type: application/json\r\ncontent-length: 7\r\n\r\n{\"a\":1}")
    #expect(
      parsed
        == Parsed(
          status: 200, contentType: "application/json", keepAlive: true, body: Array("{\"a\":1}".utf8), ended: true))
  }

  @Test func chunkedEventStreamWithExtensionsAndTrailers() throws {
    let text =
      "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n"
      + "6\r\ndata: \r\nB;name=value\r\n{\"x\":\"y\"}\n\n\r\n0\r\nx-trailer: 1\r\n\r\n"
    let parsed = try parseSplitEverywhere(text)
    #expect(parsed.status == 200)
    #expect(parsed.contentType == "text/event-stream; charset=utf-8")
    #expect(String(decoding: parsed.body, as: UTF8.self) == "data: {\"x\":\"y\"}\n\n")
    #expect(parsed.ended)
  }

  /// Several chunks in one read, as vLLM streams them: each taken whole with its CRLF, or the
  /// general way (a bare LF after the data, any cut), with the same body either way; sizes in
  /// either case of hex.
  @Test func wholeChunksParseAsCutOnes() throws {
    let events = ["data: {\"a\":1}\n\n", String(repeating: "x", count: 0x1F), "data: [DONE]\n\n"]
    let chunks =
      "\(String(events[0].utf8.count, radix: 16))\r\n\(events[0])\r\n"
      + "1F\r\n\(events[1])\n"
      + "\(String(events[2].utf8.count, radix: 16, uppercase: true))\r\n\(events[2])\r\n0\r\n\r\n"
    let response = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + chunks
    let parsed = try parseSplitEverywhere(response)
    #expect(String(decoding: parsed.body, as: UTF8.self) == events.joined())
    #expect(parsed.ended)
    // In one read, the two with their CRLF are whole chunks; the one with a bare LF is not.
    #expect(try parse([Array(response.utf8)]).wholeChunks == 2)
    // Data longer than its size, with a CR after the size's worth: not a whole chunk, and an error.
    #expect(throws: HTTP1ResponseParser.Malformed.self) {
      try parse([Array("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\rc\r\n0\r\n\r\n".utf8)])
    }
  }

  @Test func bodyUntilCloseEndsOnlyWhenTheConnectionCloses() throws {
    let text = "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\n\r\nboom"
    #expect(try parse([Array(text.utf8)]).ended == false)
    let parsed = try parseSplitEverywhere(text, closeAfter: true)
    #expect(
      parsed == Parsed(status: 500, contentType: "text/plain", keepAlive: false, body: Array("boom".utf8), ended: true))
  }

  @Test func keepAliveFollowsVersionAndConnectionHeader() throws {
    #expect(
      try parse([Array("HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n".utf8)]).keepAlive == false)
    #expect(try parse([Array("HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n".utf8)]).keepAlive == false)
    #expect(
      try parse([Array("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\ncontent-length: 0\r\n\r\n".utf8)]).keepAlive)
  }

  @Test func headerNamesMatchWithoutRegardToCaseButByEveryByte() throws {
    // "content\rlength" and "content_length" are other headers: the body ends with the close.
    let lookalikes = "HTTP/1.1 200 OK\r\ncontent\rlength: 2\r\ncontent_length: 2\r\n\r\nabcd"
    #expect(try parse([Array(lookalikes.utf8)]).ended == false)
    let parsed = try parseSplitEverywhere("HTTP/1.1 200 OK\r\nCONTENT-LENGTH: 4\r\nConnection: Close\r\n\r\nabcd")
    #expect(parsed.ended && !parsed.keepAlive)
  }

  @Test func interimResponsesAndEmptyBodies() throws {
    let parsed = try parseSplitEverywhere("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
    #expect(parsed == Parsed(status: 204, keepAlive: true, ended: true))
  }

  @Test func aCutShortResponseIsNotEnded() throws {
    var parser = HTTP1ResponseParser()
    var buffer = ByteBuffer(string: "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab")
    while try parser.next(&buffer) != nil {}
    #expect(parser.connectionClosed() == false)
  }

  @Test(arguments: [
    "HTTP/2 200\r\n\r\n",
    "HTTP/1.1 2x0 OK\r\n\r\n",
    "garbage\r\n\r\n",
    "HTTP/1.1 200 OK\r\n: no name\r\n\r\n",
    "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
    "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
    "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabc\r\n",
    "HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nab",
  ])
  func malformedResponsesAreRejected(_ text: String) {
    #expect(throws: HTTP1ResponseParser.Malformed.self) { try parse([Array(text.utf8)]) }
  }

  @Test func overlongHeadsAreRejected() {
    let head = "HTTP/1.1 200 OK\r\nx: " + String(repeating: "a", count: HTTP1ResponseParser.maximumHeadSize)
    #expect(throws: HTTP1ResponseParser.Malformed.self) { try parse([Array(head.utf8)]) }
  }

  /// Random bytes, and random damage to a valid response, never crash the parser.
  @Test func survivesArbitraryInput() {
    var generator = SystemRandomNumberGenerator()
    let valid = Array(
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/event-stream\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        .utf8)
    for round in 0..<2000 {
      var bytes: [UInt8]
      if round % 2 == 0 {
        bytes = (0..<Int.random(in: 0..<200, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator)
        }
      } else {
        bytes = valid
        for _ in 0..<3 {
          bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
        }
      }
      let cut = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &generator)
      _ = try? parse([Array(bytes[..<cut]), Array(bytes[cut...])], closeAfter: true)
    }
  }
}
