extension Span<UInt8> {
  /// Whether both runs hold the same bytes, compared eight (or four) at a time: the keys of a
  /// chat chunk are 5 to 16 bytes each, compared on every chunk, and a byte loop took about 6
  /// instructions a byte (callgrind). Loads are bounds-checked; a run's last word overlaps the
  /// one before it rather than ending in a byte loop.
  @inline(__always)
  package func hasSameBytes(as other: Span<UInt8>) -> Bool {
    let count = self.count
    guard count == other.count else { return false }
    let mine = bytes
    let theirs = other.bytes
    if count >= 16 { return Self.sameSixteens(mine, theirs, count: count) }
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
  /// At least sixteen bytes compared thirty-two a step, as two sixteen-byte blocks whose
  /// differences (exclusive or) are joined before the one comparison and branch; then the last
  /// block or two, the last ending at `count` and overlapping what came before. A kept chunk's
  /// head and the bytes around its text are about 100 bytes each: a block a step cost 16
  /// instructions per sixteen bytes, two a step cost 25 per thirty-two (callgrind; a streamed
  /// chunk 21 fewer). Not SIMD16<UInt8> and `all(.==)`: `all` reduces the mask out of line,
  /// about 40 instructions a call.
  @inline(__always)
  private static func sameSixteens(_ mine: RawSpan, _ theirs: RawSpan, count: Int) -> Bool {
    typealias Block = SIMD2<UInt64>
    @inline(__always)
    func difference(at offset: Int) -> Block {
      mine.unsafeLoadUnaligned(fromByteOffset: offset, as: Block.self)
        ^ theirs.unsafeLoadUnaligned(fromByteOffset: offset, as: Block.self)
    }
    var offset = 0
    while offset &+ 32 < count {
      guard difference(at: offset) | difference(at: offset &+ 16) == .zero else { return false }
      offset &+= 32
    }
    // From `offset`, 1 to 32 bytes are left; the last block holds them when they are 16 or fewer.
    let last = count &- 16
    guard last > offset else { return difference(at: last) == .zero }
    return difference(at: offset) | difference(at: last) == .zero
  }

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
