/// A number's decimal digits stored into a span of bytes: for `RequestTemplate`, which reserves
/// its room once rather than append digit by digit.
enum DecimalDigits {
  /// The digits of `value` stored into `target` from `offset`, which must have room for them
  /// (20 at most); answers how many were stored. Written from the last: divisions by the
  /// constant 10 (a multiply and a shift), not a hardware division a digit.
  @inline(__always)
  static func store(_ value: UInt64, into target: inout MutableRawSpan, at offset: Int) -> Int {
    var count = 1
    var rest = value
    while rest >= 10 {
      rest /= 10
      count &+= 1
    }
    rest = value
    var index = offset &+ count
    repeat {
      index &-= 1
      let digit = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
      target.storeBytes(of: digit, toByteOffset: index, as: UInt8.self)
      rest /= 10
    } while index > offset
    return count
  }
}
