/// A prompt cut into the blocks vLLM's prefix cache is keyed on. The simulator has no tokenizer,
/// so its tokens are the ones Generation.promptTokens counts: the chat template's 8, then one per
/// 4 bytes of text (the last one takes any remainder). They go in blocks of 16, and each block's
/// hash is chained to the hash of the block before it, as vLLM's block hashes are: a block matches
/// only when everything before it matches too. Only full blocks are hashed, as in vLLM.
enum PromptBlocks {
  static let blockSize = 16
  /// The tokens Generation.promptTokens adds to the text's for the template around a prompt.
  static let templateTokens = 8

  /// The chained hash of every full block of `prompt` sent to `model`.
  static func hashes(model: String, prompt: String) -> [UInt64] {
    let text = Array(prompt.utf8)
    let textTokens = max(1, text.count / 4)
    let blockCount = (templateTokens + textTokens) / blockSize
    guard blockCount > 0 else { return [] }
    // The model seeds the chain, so two models never share a block.
    var parent = finish(fnv(offsetBasis, Array(model.utf8)))
    var hashes: [UInt64] = []
    hashes.reserveCapacity(blockCount)
    for block in 0..<blockCount {
      var hash = parent
      for token in block * blockSize..<(block + 1) * blockSize {
        if token < templateTokens {
          // 0xFF never occurs in UTF-8, so template tokens cannot collide with text.
          hash = fnv(hash, [0xFF, UInt8(token)])
        } else {
          let index = token - templateTokens
          let end = index == textTokens - 1 ? text.count : index * 4 + 4
          hash = fnv(hash, text[min(index * 4, text.count)..<end])
          // A separator (never in UTF-8) so that token boundaries are part of the hash.
          hash = fnv(hash, [0xFE])
        }
      }
      parent = finish(hash)
      hashes.append(parent)
    }
    return hashes
  }

  private static let offsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325

  /// FNV-1a: cheap enough to run on every prompt at benchmark rates.
  private static func fnv<Bytes: Sequence<UInt8>>(_ seed: UInt64, _ bytes: Bytes) -> UInt64 {
    var hash = seed
    for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
    return hash
  }

  /// SplitMix64's finalizer: spreads FNV's weak high bits before a hash seeds the next block.
  private static func finish(_ value: UInt64) -> UInt64 {
    var z = value &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
