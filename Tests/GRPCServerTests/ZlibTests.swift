import Testing

@testable import GRPCServer

@Suite struct ZlibTests {
  private let text = Array(String(repeating: "the quick brown fox ", count: 200).utf8)

  @Test(arguments: [true, false])
  func roundTrips(gzip: Bool) throws {
    let compressed = text.withUnsafeBytes { Zlib.compress($0, gzip: gzip) }
    #expect(compressed.count < text.count / 10)
    // gzip streams start with 1f 8b; zlib streams with 78.
    #expect(compressed.first == (gzip ? 0x1F : 0x78))
    let restored = try compressed.withUnsafeBytes { try Zlib.decompress($0, limit: 1 << 20) }
    #expect(restored == text)
  }

  @Test func refusesToInflatePastTheLimit() {
    let compressed = text.withUnsafeBytes { Zlib.compress($0, gzip: true) }
    #expect(throws: Zlib.Failure.tooLarge(limit: 100)) {
      try compressed.withUnsafeBytes { try Zlib.decompress($0, limit: 100) }
    }
  }

  @Test func rejectsGarbageAndTruncation() {
    #expect(throws: Zlib.Failure.self) {
      try Array("not compressed".utf8).withUnsafeBytes { try Zlib.decompress($0, limit: 1000) }
    }
    let compressed = text.withUnsafeBytes { Zlib.compress($0, gzip: true) }
    #expect(throws: Zlib.Failure.corrupt("compressed message is truncated")) {
      try Array(compressed.prefix(compressed.count / 2)).withUnsafeBytes { try Zlib.decompress($0, limit: 1 << 20) }
    }
  }

  @Test func emptyMessagesRoundTrip() throws {
    let compressed = [UInt8]().withUnsafeBytes { Zlib.compress($0, gzip: true) }
    #expect(try compressed.withUnsafeBytes { try Zlib.decompress($0, limit: 10) } == [])
  }
}
