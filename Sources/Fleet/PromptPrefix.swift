/// A prompt's leading bytes hashed in fixed-size blocks, each hash chaining every block before it,
/// as vLLM hashes its KV-cache blocks: two prompts share their first n hashes exactly when they
/// share their first n blocks (barring a collision), so the longest run of known hashes is the
/// longest prefix a replica may still hold.
public struct PromptPrefix: Sendable, Equatable {
  /// 128 bytes is about 32 tokens of English in JSON, two of vLLM's 16-token blocks.
  public static let blockSize = 128
  /// Only the first 32 blocks (4 KiB) are hashed: enough to tell system prompts and
  /// conversations apart, and a bounded cost per call.
  public static let maximumBlocks = 32

  public static let none = PromptPrefix(hashes: [])

  /// One hash per whole block, the first block's first; a trailing partial block is left out, as
  /// vLLM caches only full blocks.
  public let hashes: [UInt64]

  public init(hashes: [UInt64]) {
    self.hashes = hashes
  }

  /// Hashes `bytes[range]`, eight bytes at a time.
  public init(_ bytes: [UInt8], range: Range<Int>) {
    let blocks = min(range.count / Self.blockSize, Self.maximumBlocks)
    var hashes: [UInt64] = []
    hashes.reserveCapacity(blocks)
    var hash: UInt64 = 0x243F_6A88_85A3_08D3
    var index = range.lowerBound
    for _ in 0..<blocks {
      let end = index + Self.blockSize
      while index < end {
        var word: UInt64 = 0
        for shift in stride(from: 0, to: 64, by: 8) {
          word |= UInt64(bytes[index]) << UInt64(shift)
          index += 1
        }
        hash = Self.mix(hash ^ word)
      }
      hashes.append(hash)
    }
    self.hashes = hashes
  }

  /// A multiply-xorshift step (the finaliser of MurmurHash3's 64-bit variant).
  @inline(__always)
  static func mix(_ value: UInt64) -> UInt64 {
    var x = value &* 0xFF51_AFD7_ED55_8CCD
    x ^= x >> 33
    x = x &* 0xC4CE_B9FE_1A85_EC53
    x ^= x >> 29
    return x
  }
}
