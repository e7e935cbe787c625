import Foundation
import NIOCore

/// Time-stamped tokens for latency probes: with "vllm_sim": {"stamp": true} every token is the
/// fixed-width placeholder `~T0000000000000000000~`, and right before each piece of the answer is
/// written its placeholders get the current CLOCK_MONOTONIC time in nanoseconds (19 digits,
/// zero-padded). A client on the same machine subtracts the stamp from its own clock on receipt.
enum TokenStamp {
  static let digitCount = 19
  static let placeholder = "~T" + String(repeating: "0", count: digitCount) + "~"
  private static let length = digitCount + 3
  private static let tilde = UInt8(ascii: "~")
  private static let letterT = UInt8(ascii: "T")

  /// Writes the current time into the digits of every placeholder in `buffer`.
  static func stamp(_ buffer: inout ByteBuffer) {
    // Unsafe buffer: a read-only scan of the piece about to be written, within this call.
    let starts = buffer.withUnsafeReadableBytes { bytes -> [Int] in
      guard bytes.count >= length else { return [] }
      var starts: [Int] = []
      var index = 0
      while index <= bytes.count - length {
        if bytes[index] == tilde, bytes[index + 1] == letterT, bytes[index + length - 1] == tilde {
          starts.append(index)
          index += length
        } else {
          index += 1
        }
      }
      return starts
    }
    guard !starts.isEmpty else { return }
    let digits = Array(String(now()).utf8)
    var field = [UInt8](repeating: UInt8(ascii: "0"), count: digitCount - digits.count)
    field.append(contentsOf: digits)
    for start in starts {
      buffer.setBytes(field, at: buffer.readerIndex + start + 2)
    }
  }

  private static func now() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
  }
}
