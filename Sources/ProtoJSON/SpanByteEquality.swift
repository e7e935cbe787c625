extension Span<UInt8> {
  /// Whether both runs hold the same bytes, compared eight (or four) at a time: the keys of a
  /// chat chunk are 5 to 16 bytes each, compared on every chunk, and a byte loop took about 6
  /// instructions a byte (callgrind). Loads are bounds-checked; a run's last word overlaps the
  /// one before it rather than ending in a byte loop.
  @inline(__always)
  func hasSameBytes(as other: Span<UInt8>) -> Bool {
    let count = self.count
    guard count == other.count else { return false }
    let mine = bytes
    let theirs = other.bytes
    // A reply template's runs are up to a few hundred bytes: sixteen at a time halves the
    // loop's bounds checks and branches there.
    if count >= 16 { return Self.sameBlocks(mine, theirs, count: count, as: SIMD2<UInt64>.self) }
    if count >= 8 { return Self.sameBlocks(mine, theirs, count: count, as: UInt64.self) }
    if count >= 4 {
      return mine.halfWord(at: 0) == theirs.halfWord(at: 0)
        && mine.halfWord(at: count &- 4) == theirs.halfWord(at: count &- 4)
    }
    for offset in 0..<count where self[offset] != other[offset] { return false }
    return true
  }
}

extension Span<UInt8> {
  /// `count` bytes compared a block at a time, the last block overlapping the one before it.
  /// `count` is at least a block. Any bit pattern is a valid block (see `word(at:)`).
  @inline(__always)
  private static func sameBlocks<Block: BitwiseCopyable & Equatable>(
    _ mine: RawSpan, _ theirs: RawSpan, count: Int, as block: Block.Type
  ) -> Bool {
    let size = MemoryLayout<Block>.size
    var offset = 0
    while offset &+ size < count {
      guard
        mine.unsafeLoadUnaligned(fromByteOffset: offset, as: Block.self)
          == theirs.unsafeLoadUnaligned(fromByteOffset: offset, as: Block.self)
      else { return false }
      offset &+= size
    }
    return mine.unsafeLoadUnaligned(fromByteOffset: count &- size, as: Block.self)
      == theirs.unsafeLoadUnaligned(fromByteOffset: count &- size, as: Block.self)
  }
}

extension RawSpan {
  /// Eight bytes from `offset`, as the platform loads them (callers read them little-endian).
  /// The offset is checked, and any bit pattern is a valid UInt64: the standard library marks
  /// this load (and `Span.bytes`) unsafe for types where that is not so. Eight checked
  /// subscripts shifted together compile to the same single load on their own, but cost 280
  /// more instructions per chat chunk inside the translator (callgrind, translation-bench).
  @inline(__always)
  func word(at offset: Int) -> UInt64 {
    unsafeLoadUnaligned(fromByteOffset: offset, as: UInt64.self)
  }

  @inline(__always)
  func halfWord(at offset: Int) -> UInt32 {
    unsafeLoadUnaligned(fromByteOffset: offset, as: UInt32.self)
  }
}
