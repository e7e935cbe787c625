/// Finds vllm-sim's token stamps, `~T` + 19 digits + `~`, in the bytes of one stream as they
/// arrive, keeping the end of each piece so a stamp split across reads or frames is still found.
struct StampScanner {
  static let length = 22
  private static let digitCount = 19
  private static let tilde = UInt8(ascii: "~")
  private static let letterT = UInt8(ascii: "T")
  private static let zero = UInt8(ascii: "0")

  /// The unfinished end of the previous piece: from its first `~` among the last 21 bytes.
  private var tail: [UInt8] = []

  /// Calls `found` with each stamp (CLOCK_MONOTONIC nanoseconds) completed by `bytes`.
  mutating func scan(_ bytes: UnsafeRawBufferPointer, _ found: (Int64) -> Void) {
    if tail.isEmpty {
      tail = Self.find(in: bytes, found)
    } else {
      var window = tail
      window.append(contentsOf: bytes)
      tail = window.withUnsafeBytes { Self.find(in: $0, found) }
    }
  }

  /// Reports every complete stamp in `bytes`; returns what may be the start of the next one.
  private static func find(in bytes: UnsafeRawBufferPointer, _ found: (Int64) -> Void) -> [UInt8] {
    var index = 0
    while index + length <= bytes.count {
      if bytes[index] == tilde, bytes[index + 1] == letterT, bytes[index + length - 1] == tilde,
        let stamp = digits(bytes, from: index + 2)
      {
        if stamp > 0 { found(stamp) }
        index += length
      } else {
        index += 1
      }
    }
    // A stamp starting in the last length - 1 bytes is not complete yet.
    var start = max(index, bytes.count - (length - 1))
    while start < bytes.count, bytes[start] != tilde { start += 1 }
    return start < bytes.count ? Array(bytes[start...]) : []
  }

  private static func digits(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int64? {
    var value: Int64 = 0
    for offset in start..<start + digitCount {
      let digit = bytes[offset] &- zero
      guard digit < 10 else { return nil }
      value = value &* 10 &+ Int64(digit)
    }
    return value
  }
}
