import Testing

@testable import GRPCServer

@Suite struct MessageDeframerTests {
  private func framed(_ message: [UInt8], compressed: Bool = false) -> [UInt8] {
    var out: [UInt8] = []
    message.withUnsafeBytes { MessageFramer.frame($0, compressed: compressed, into: &out) }
    return out
  }

  private func feed(_ deframer: inout MessageDeframer, _ bytes: [UInt8]) throws -> [MessageDeframer.Frame] {
    var frames: [MessageDeframer.Frame] = []
    try bytes.withUnsafeBytes { raw in try deframer.feed(raw) { frames.append($0) } }
    return frames
  }

  @Test func framesWithTheFiveBytePrefix() {
    #expect(framed([7, 8, 9], compressed: true) == [1, 0, 0, 0, 3, 7, 8, 9])
  }

  @Test func reassemblesAMessageFedOneByteAtATime() throws {
    var deframer = MessageDeframer(maximumMessageSize: 1024)
    let message = Array(0..<200).map { UInt8($0) }
    var frames: [MessageDeframer.Frame] = []
    for byte in framed(message) {
      frames += try feed(&deframer, [byte])
      #expect(frames.isEmpty || frames.count == 1)
    }
    #expect(frames == [MessageDeframer.Frame(isCompressed: false, bytes: message)])
    #expect(!deframer.hasPartialMessage)
  }

  @Test func splitsSeveralMessagesInOneChunk() throws {
    var deframer = MessageDeframer(maximumMessageSize: 1024)
    let chunk = framed([1]) + framed([]) + framed([2, 3], compressed: true) + framed([4])
    let frames = try feed(&deframer, chunk)
    #expect(frames.map(\.bytes) == [[1], [], [2, 3], [4]])
    #expect(frames.map(\.isCompressed) == [false, false, true, false])
  }

  @Test func reportsAPartialMessage() throws {
    var deframer = MessageDeframer(maximumMessageSize: 1024)
    _ = try feed(&deframer, Array(framed([1, 2, 3]).prefix(6)))
    #expect(deframer.hasPartialMessage)
    var headerOnly = MessageDeframer(maximumMessageSize: 1024)
    _ = try feed(&headerOnly, [0, 0])
    #expect(headerOnly.hasPartialMessage)
  }

  @Test func rejectsAMessageOverTheLimitBeforeBufferingIt() {
    var deframer = MessageDeframer(maximumMessageSize: 10)
    #expect(throws: MessageDeframer.Failure.tooLarge(length: 11, limit: 10)) {
      try feed(&deframer, [0, 0, 0, 0, 11])
    }
  }

  @Test func acceptsAMessageExactlyAtTheLimit() throws {
    var deframer = MessageDeframer(maximumMessageSize: 4)
    #expect(try feed(&deframer, framed([1, 2, 3, 4])).count == 1)
  }

  @Test func rejectsAnUnknownFlag() {
    var deframer = MessageDeframer(maximumMessageSize: 10)
    #expect(throws: MessageDeframer.Failure.invalidFlag(2)) {
      try feed(&deframer, [2, 0, 0, 0, 0])
    }
  }
}
