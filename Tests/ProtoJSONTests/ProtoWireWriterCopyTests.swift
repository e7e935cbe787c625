import Testing

@testable import ProtoJSON

/// `lengthDelimited(_:_:_:)` writes content of up to 64 bytes a word at a time, and longer
/// content, or content too close to the end of its source, by memcpy: both must give the bytes
/// a byte loop gives.
@Suite struct ProtoWireWriterCopyTests {
  @Test func copiedContentIsExactForEveryLengthAndPlace() {
    for length in 0...72 {
      for trailing in [0, 1, 7, 8, 15, 16, 17, 30] {
        for leading in [0, 1, 9] {
          let source = (0..<(leading + length + trailing)).map { UInt8(truncatingIfNeeded: 0x30 &+ $0 &* 7) }
          let range = leading..<(leading + length)
          for number: Int32 in [1, 15, 16, 2047, 2048] {
            var writer = ProtoWireWriter()
            writer.append([0xAA])
            writer.lengthDelimited(number, source, range)
            writer.append([0xBB])
            var expected = ProtoWireWriter()
            expected.append([0xAA])
            expected.tag(number, .lengthDelimited)
            expected.varint(UInt64(length))
            expected.append(Array(source[range]))
            expected.append([0xBB])
            #expect(
              writer.bytes == expected.bytes,
              "length \(length), \(leading) bytes before, \(trailing) after, field \(number)")
          }
        }
      }
    }
  }
}
