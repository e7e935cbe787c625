import Testing

@testable import GRPCServer

/// HTTP/2's rules for request fields, byte by byte against the sets RFC 9113 and RFC 9110 give
/// (the same as nghttp2's tables, which checked them before). The raw HTTP/2 client's cases,
/// through a real connection, are tests/python/test_malformed_requests.py.
@Suite struct HTTPRequestRulesTests {
  private static func withBytes<Result>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) -> Result) -> Result {
    bytes.withUnsafeBytes(body)
  }

  private static let tokenSymbols = Set("!#$%&'*+-.^_`|~".utf8)

  private static func isDigit(_ byte: UInt8) -> Bool { (0x30...0x39).contains(byte) }
  private static func isLower(_ byte: UInt8) -> Bool { (0x61...0x7A).contains(byte) }
  private static func isUpper(_ byte: UInt8) -> Bool { (0x41...0x5A).contains(byte) }

  @Test func everyByteOfANameIsJudgedAsALowerCaseToken() {
    for byte in UInt8.min...UInt8.max {
      let expected = Self.isLower(byte) || Self.isDigit(byte) || Self.tokenSymbols.contains(byte)
      // In a short name (judged a byte at a time), and at every position of longer ones
      // (judged eight at a time, the last word overlapping).
      let name: [UInt8] = Array("x-".utf8) + [byte] + Array("-y".utf8)
      #expect(Self.withBytes(name, HTTPFieldSyntax.isValidName) == expected, "byte \(byte)")
      for length in [8, 12, 17] {
        for position in 0..<length {
          var name = Array("x-request-9abcdef".utf8.prefix(length))
          name[position] = byte
          #expect(Self.withBytes(name, HTTPFieldSyntax.isValidName) == expected, "byte \(byte) at \(position)")
        }
      }
    }
  }

  @Test func everyByteOfAValueIsJudgedAsVisibleTabOrHigh() {
    for byte in UInt8.min...UInt8.max {
      let expected = byte == 0x09 || (0x20...0x7E).contains(byte) || byte >= 0x80
      // Inside a value long enough for the eight-byte steps, at every position of a word.
      for position in 0..<17 {
        var value = Array("abcdefghijklmnopq".utf8)
        value[position] = byte
        let isEdge = position == 0 || position == 16
        let judged = Self.withBytes(value, HTTPFieldSyntax.isValidValue)
        #expect(judged == (expected && !(isEdge && (byte == 0x20 || byte == 0x09))), "byte \(byte) at \(position)")
      }
    }
  }

  @Test func everyByteOfAPathIsJudgedAsVisibleOrHigh() {
    for byte in UInt8.min...UInt8.max {
      let expected = (0x21...0x7E).contains(byte) || byte >= 0x80
      for position in [1, 5, 9, 12] {
        var path = Array("/service/method".utf8)
        path[position] = byte
        #expect(Self.withBytes(path, HTTPFieldSyntax.isValidPath) == expected, "byte \(byte) at \(position)")
      }
    }
  }

  @Test func everyByteOfAMethodAuthorityAndSchemeIsJudged() {
    let authoritySymbols = Set("-._~!$&'()*+,;=:%@[]".utf8)
    for byte in UInt8.min...UInt8.max {
      let letterOrDigit = Self.isLower(byte) || Self.isUpper(byte) || Self.isDigit(byte)
      let method = Self.isLower(byte) || Self.isUpper(byte) || Self.isDigit(byte) || Self.tokenSymbols.contains(byte)
      #expect(Self.withBytes([0x50, byte], HTTPFieldSyntax.isValidMethod) == method, "method byte \(byte)")
      let authority = letterOrDigit || authoritySymbols.contains(byte)
      #expect(Self.withBytes([0x61, byte], HTTPFieldSyntax.isValidAuthority) == authority, "authority byte \(byte)")
      for position in 0..<15 {
        var host = Array("127.0.0.1:50051".utf8)
        host[position] = byte
        #expect(
          Self.withBytes(host, HTTPFieldSyntax.isValidAuthority) == authority, "authority byte \(byte) at \(position)")
      }
      let scheme = letterOrDigit || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
      #expect(Self.withBytes([0x68, byte], HTTPFieldSyntax.isValidScheme) == scheme, "scheme byte \(byte)")
    }
    #expect(!Self.withBytes(Array("1http".utf8), HTTPFieldSyntax.isValidScheme))
    #expect(!Self.withBytes([], HTTPFieldSyntax.isValidMethod))
    #expect(!Self.withBytes([], HTTPFieldSyntax.isValidName))
    #expect(Self.withBytes([], HTTPFieldSyntax.isValidValue))
  }

  private static func rules(_ fields: [(String, String)]) -> HTTPRequestRules {
    var rules = HTTPRequestRules()
    for (name, value) in fields {
      _ = withBytes(Array(name.utf8)) { name in
        withBytes(Array(value.utf8)) { rules.take(RequestFieldName(name), name: name, value: $0) }
      }
    }
    return rules
  }

  private static let request = [(":method", "POST"), (":scheme", "http"), (":path", "/a/b"), (":authority", "x")]

  @Test func aWholeRequestIsComplete() {
    #expect(Self.rules(Self.request + [("te", "Trailers"), ("content-length", "0012")]).isComplete)
    #expect(Self.rules(Self.request + [("te", "Trailers"), ("content-length", "0012")]).contentLength == 12)
    #expect(Self.rules(Self.request.filter { $0.0 != ":authority" } + [("host", "x")]).isComplete)
    #expect(Self.rules([(":method", "CONNECT"), (":authority", "x:443")]).isComplete)
    #expect(Self.rules([(":method", "OPTIONS"), (":scheme", "https"), (":path", "*"), (":authority", "x")]).isComplete)
    #expect(
      Self.rules([(":method", "POST"), (":scheme", "foo"), (":path", "relative"), (":authority", "x")]).isComplete)
  }

  @Test(arguments: [
    [(":method", "POST"), (":scheme", "http"), (":path", "/a/b")],
    [(":method", "POST"), (":path", "/a/b"), (":authority", "x")],
    [(":method", "GET"), (":scheme", "http"), (":path", "*"), (":authority", "x")],
    [(":method", "POST"), (":scheme", "HTTP"), (":path", "a/b"), (":authority", "x")],
    [(":method", "CONNECT"), (":authority", "x:443"), (":path", "/")],
    [(":method", "CONNECT")],
  ])
  func anIncompleteRequestIsNot(fields: [(String, String)]) {
    let rules = Self.rules(fields)
    #expect(!rules.isMalformed)
    #expect(!rules.isComplete)
  }

  @Test(arguments: [
    [(":path", "/again")], [(":status", "200")], [(":protocol", "websocket")], [(":", "x")],
    [("x-a", "1"), (":authority", "late")], [("content-length", "1"), ("content-length", "1")],
    [("content-length", "-1")], [("content-length", "")], [("content-length", "1234567890123456789")],
    [("te", "gzip")], [("host", "a"), ("host", "a")], [("host", "a b")], [("connection", "close")],
    [("keep-alive", "1")], [("proxy-connection", "x")], [("transfer-encoding", "chunked")], [("upgrade", "h2c")],
    [("X-Upper", "1")], [("x-value", " padded")], [("x-value", "padded\t")], [("x-value", "a\u{0}b")],
  ])
  func aBrokenFieldMakesTheRequestMalformed(extra: [(String, String)]) {
    let rules = Self.rules(Self.request + extra)
    #expect(rules.isMalformed)
    #expect(!rules.isComplete)
  }

  @Test func anEmptyOrBlankPseudoHeaderIsMalformed() {
    #expect(Self.rules([(":method", "POST"), (":scheme", "http"), (":path", ""), (":authority", "x")]).isMalformed)
    #expect(Self.rules([(":method", "POST"), (":scheme", "http"), (":path", "/"), (":authority", "")]).isMalformed)
  }

  @Test func trailersMayCarryNoPseudoHeaderNorWhatARequestMayNot() {
    func valid(_ name: String, _ value: String) -> Bool {
      Self.withBytes(Array(name.utf8)) { name in
        Self.withBytes(Array(value.utf8)) { HTTPRequestRules.isValidTrailer(name: name, value: $0) }
      }
    }
    #expect(valid("x-checksum", "abc"))
    #expect(valid("te", "trailers"))
    #expect(!valid(":path", "/a/b"))
    #expect(!valid("Upper", "1"))
    #expect(!valid("x-a", "line\nbreak"))
    #expect(!valid("content-length", "1"))
    #expect(!valid("connection", "close"))
    #expect(!valid("te", "gzip"))
  }
}
