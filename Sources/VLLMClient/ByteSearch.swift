extension Span<UInt8> {
  /// The index of the first `target` in `range`, or nil. Eight bytes a step while eight remain
  /// (the bytes equal to `target` become zero bytes, which the classic borrow test finds), then
  /// byte by byte: a byte loop took about 4 instructions a byte on a response head's lines
  /// (callgrind). The test's lowest set bit is always the first zero byte, so the answer is exact.
  @inline(__always)
  package func firstIndex(of target: UInt8, in range: Range<Int>) -> Int? {
    let raw = bytes
    let pattern = UInt64(target) &* 0x0101_0101_0101_0101
    var index = range.lowerBound
    while index &+ 8 <= range.upperBound {
      let word = raw.littleEndianWord(at: index) ^ pattern
      let zeroBytes = (word &- 0x0101_0101_0101_0101) & ~word & 0x8080_8080_8080_8080
      if zeroBytes != 0 { return index &+ zeroBytes.trailingZeroBitCount &>> 3 }
      index &+= 8
    }
    while index < range.upperBound {
      if self[index] == target { return index }
      index &+= 1
    }
    return nil
  }
}

extension RawSpan {
  /// Eight bytes from `offset`, the first the lowest. The offset is checked, and any bit pattern
  /// is a valid UInt64: the standard library marks this load unsafe for types where that is not
  /// so.
  @inline(__always)
  func littleEndianWord(at offset: Int) -> UInt64 {
    UInt64(littleEndian: unsafeLoadUnaligned(fromByteOffset: offset, as: UInt64.self))
  }
}
