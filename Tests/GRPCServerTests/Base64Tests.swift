import Testing

@testable import GRPCServer

@Suite struct Base64Tests {
  @Test func encodesWithoutPadding() {
    #expect(Base64.encode([0x00, 0x01, 0xFE, 0xFF, 0x10]) == "AAH+/xA")
    #expect(Base64.encode(Array("foobar".utf8)) == "Zm9vYmFy")
    #expect(Base64.encode([]) == "")
  }

  @Test(arguments: ["AAH+/xA=", "AAH+/xA"])
  func decodesPaddedAndUnpadded(text: String) {
    #expect(Base64.decode(text) == [0x00, 0x01, 0xFE, 0xFF, 0x10])
  }

  @Test(arguments: ["A", "not*base64", "AB=C", "ab cd"])
  func rejectsInvalidText(text: String) {
    #expect(Base64.decode(text) == nil)
  }

  @Test func roundTripsEveryLength() {
    for length in 0..<64 {
      let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
      #expect(Base64.decode(Base64.encode(bytes)) == bytes)
    }
  }
}
