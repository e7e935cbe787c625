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
}
