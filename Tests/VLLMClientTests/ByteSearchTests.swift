import Testing

@testable import VLLMClient

/// The word-at-a-time search finds exactly what a byte loop finds, for every length and start,
/// among bytes next to the target in value (where the borrow test could flag a neighbour).
@Suite struct ByteSearchTests {
  @Test func firstIndexMatchesAByteLoop() {
    var generator = SystemRandomNumberGenerator()
    let alphabet: [UInt8] = [0x00, 0x01, 0x0A, 0x0B, 0x3A, 0x3B, 0x80, 0x8A, 0xFF]
    for length in 0..<40 {
      for _ in 0..<50 {
        let bytes = (0..<length).map { _ in alphabet.randomElement(using: &generator)! }
        for target: UInt8 in [0x0A, 0x3A, 0x00] {
          for start in 0...length {
            let expected = bytes[start...].firstIndex(of: target)
            #expect(bytes.span.firstIndex(of: target, in: start..<length) == expected, "\(bytes) \(target) \(start)")
          }
        }
      }
    }
  }
}
