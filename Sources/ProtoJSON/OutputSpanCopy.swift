extension OutputSpan<UInt8> {
  /// Appends `source`'s bytes sixteen at a time, the last block ending where `source` ends
  /// (stored again over part of the block before). This toolchain's OutputSpan has no bulk copy;
  /// a byte loop costs about three instructions a byte, and a chat chunk's head is about 90
  /// bytes: as an array slice appended with memcpy it cost a generic call and a retain and
  /// release of the array (callgrind).
  @inline(__always)
  mutating func append(copying source: Span<UInt8>) {
    typealias Block = SIMD2<UInt64>
    let count = source.count
    guard count >= 16 else {
      for index in 0..<count { append(source[index]) }
      return
    }
    let start = self.count
    append(repeating: 0, count: count)
    var content = mutableSpan
    // `mutableBytes` and `unsafeLoadUnaligned` are marked unsafe for types with invalid bit
    // patterns; bytes and blocks of integers have none. Loads and stores are bounds-checked.
    var target = content.mutableBytes
    let blocks = source.bytes
    var offset = 0
    while offset &+ 16 < count {
      target.storeBytes(
        of: blocks.unsafeLoadUnaligned(fromByteOffset: offset, as: Block.self), toByteOffset: start &+ offset,
        as: Block.self)
      offset &+= 16
    }
    target.storeBytes(
      of: blocks.unsafeLoadUnaligned(fromByteOffset: count &- 16, as: Block.self), toByteOffset: start &+ count &- 16,
      as: Block.self)
  }
}
