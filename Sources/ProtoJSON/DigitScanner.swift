/// Reads fixed-width digit groups and separators, for timestamps and durations.
struct DigitScanner {
  private let bytes: [UInt8]
  private var index = 0

  init(_ bytes: [UInt8]) {
    self.bytes = bytes
  }

  var isAtEnd: Bool { index == bytes.count }

  mutating func skip(_ character: Unicode.Scalar) -> Bool {
    guard index < bytes.count, bytes[index] == UInt8(ascii: character) else { return false }
    index += 1
    return true
  }

  /// Exactly `count` digits.
  mutating func digits(_ count: Int) -> Int64? {
    guard bytes.count - index >= count else { return nil }
    var value: Int64 = 0
    for _ in 0..<count {
      guard let digit = digit() else { return nil }
      value = value * 10 + digit
    }
    return value
  }

  /// One or more digits, at most 12 (more than any field here holds).
  mutating func number() -> Int64? {
    var value: Int64 = 0
    var count = 0
    while count < 13, let digit = digit() {
      value = value * 10 + digit
      count += 1
    }
    return count > 0 && count <= 12 ? value : nil
  }

  /// One to nine fractional digits, as nanoseconds.
  mutating func fraction() -> Int64? {
    var value: Int64 = 0
    var count = 0
    while let digit = digit() {
      count += 1
      guard count <= 9 else { return nil }
      value = value * 10 + digit
    }
    guard count > 0 else { return nil }
    for _ in count..<9 { value *= 10 }
    return value
  }

  private mutating func digit() -> Int64? {
    guard index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") else {
      return nil
    }
    index += 1
    return Int64(bytes[index - 1] - UInt8(ascii: "0"))
  }
}
