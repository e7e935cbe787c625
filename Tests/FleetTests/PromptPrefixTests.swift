import Testing

@testable import Fleet

@Suite struct PromptPrefixTests {
  func prefix(_ text: String) -> PromptPrefix {
    let bytes = Array(text.utf8)
    return PromptPrefix(bytes, range: 0..<bytes.count)
  }

  @Test func promptsSharingBlocksShareTheirHashes() {
    let system = String(repeating: "You are a helpful assistant. ", count: 20)  // 580 bytes: 4 blocks
    let a = prefix(system + "first question, a long one to fill another block of the prompt with text here")
    let b = prefix(system + "second question that differs from the first one from its very first byte on...")
    #expect(a.hashes.count == 5 && b.hashes.count == 5)
    #expect(Array(a.hashes.prefix(4)) == Array(b.hashes.prefix(4)))
    #expect(a.hashes[4] != b.hashes[4])
  }

  @Test func aDifferentFirstBlockChangesEveryHash() {
    let a = prefix(String(repeating: "a", count: 512))
    let b = prefix("b" + String(repeating: "a", count: 511))
    #expect(zip(a.hashes, b.hashes).allSatisfy { $0 != $1 })
  }

  @Test func onlyWholeBlocksAndAtMostTheFirst4KiBCount() {
    #expect(prefix(String(repeating: "x", count: 127)).hashes.isEmpty)
    #expect(prefix(String(repeating: "x", count: 300)).hashes.count == 2)
    #expect(prefix(String(repeating: "x", count: 100_000)).hashes.count == PromptPrefix.maximumBlocks)
  }

  @Test func aRangeInsideABody() {
    let body = Array(#"{"model":"m","messages":"#.utf8) + Array(String(repeating: "z", count: 256).utf8)
    let start = 24
    #expect(PromptPrefix(body, range: start..<body.count).hashes == prefix(String(repeating: "z", count: 256)).hashes)
  }
}
