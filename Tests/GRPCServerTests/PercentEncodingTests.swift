import Testing

@testable import GRPCServer

@Suite struct PercentEncodingTests {
  @Test func leavesPrintableASCIIAlone() {
    #expect(PercentEncoding.encode("plain text: ok!") == "plain text: ok!")
  }

  @Test func encodesPercentControlAndNonASCII() {
    #expect(PercentEncoding.encode("100%\n☺") == "100%25%0A%E2%98%BA")
  }

  @Test(arguments: ["", "a", "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n", "%%%", "end%"])
  func roundTrips(message: String) {
    #expect(PercentEncoding.decode(PercentEncoding.encode(message)) == message)
  }

  @Test func keepsMalformedEscapes() {
    #expect(PercentEncoding.decode("50%zz and %4") == "50%zz and %4")
    #expect(PercentEncoding.decode("%41%62") == "Ab")
  }

  /// A message past `mostMessageBytes` encoded is cut where a code point starts, as long as it
  /// and the mark fit, and what is kept decodes to the message's own beginning.
  @Test(arguments: [
    String(repeating: "m", count: 100_000), String(repeating: "é", count: 5_000),
    String(repeating: "😈", count: 3_000), "x" + String(repeating: "☺", count: 2_000),
    String(repeating: "a", count: 4_085) + "☺☺",
  ])
  func longMessagesAreCutToFitAHeader(message: String) {
    let header = PercentEncoding.encodeForHeader(message)
    #expect(header.utf8.count <= PercentEncoding.mostMessageBytes)
    #expect(header.hasSuffix(TruncatedText.mark))
    let kept = PercentEncoding.decode(String(header.dropLast(TruncatedText.mark.count)))
    #expect(message.hasPrefix(kept) && !kept.isEmpty)
    // Nothing more would have fitted: the next code point's encoding passes the room.
    let next = message.unicodeScalars.dropFirst(kept.unicodeScalars.count).first.map { String($0) } ?? ""
    #expect(
      PercentEncoding.encode(kept + next).utf8.count + TruncatedText.mark.utf8.count
        > PercentEncoding.mostMessageBytes)
  }

  @Test func messagesThatFitAreSentWhole() {
    let fits = String(repeating: "a", count: PercentEncoding.mostMessageBytes)
    #expect(PercentEncoding.encodeForHeader(fits) == fits)
    #expect(PercentEncoding.encodeForHeader("100%") == "100%25")
  }
}
