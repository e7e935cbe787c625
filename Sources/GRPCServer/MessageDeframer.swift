/// Splits a request body into gRPC messages: each is a 1-byte compressed flag, a 4-byte big-endian
/// length, and that many bytes. Messages may span DATA frames and frames may hold several.
struct MessageDeframer {
  struct Frame: Equatable {
    var isCompressed: Bool
    var bytes: [UInt8]
  }

  enum Failure: Error, Equatable {
    case tooLarge(length: Int, limit: Int)
    case invalidFlag(UInt8)
  }

  let maximumMessageSize: Int
  /// The prefix bytes read so far, big-endian, and how many there are.
  private var header: UInt64 = 0
  private var headerCount = 0
  private var body: [UInt8] = []
  private var expectedLength: Int? = nil
  private var isCompressed = false

  init(maximumMessageSize: Int) {
    self.maximumMessageSize = maximumMessageSize
  }

  /// True when bytes of an unfinished message are buffered; the end of the stream then means the
  /// client sent a truncated message.
  var hasPartialMessage: Bool { headerCount > 0 || expectedLength != nil }

  mutating func feed(
    _ bytes: UnsafeRawBufferPointer, onFrame: (Frame) -> Void
  ) throws(Failure) {
    var index = 0
    while index < bytes.count {
      guard let length = expectedLength else {
        header = header << 8 | UInt64(bytes[index])
        headerCount += 1
        index += 1
        if headerCount == 5 { try beginMessage() }
        if expectedLength == 0 { finishMessage(onFrame) }
        continue
      }
      let take = min(length - body.count, bytes.count - index)
      body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index..<index + take]))
      index += take
      if body.count == length { finishMessage(onFrame) }
    }
  }

  private mutating func beginMessage() throws(Failure) {
    let flag = UInt8(truncatingIfNeeded: header >> 32)
    guard flag <= 1 else { throw .invalidFlag(flag) }
    let length = Int(header & 0xFFFF_FFFF)
    guard length <= maximumMessageSize else { throw .tooLarge(length: length, limit: maximumMessageSize) }
    isCompressed = flag == 1
    expectedLength = length
    header = 0
    headerCount = 0
    // Reserve no more than a frame's worth up front: a length is only a claim until the bytes arrive.
    body.reserveCapacity(min(length, 64 * 1024))
  }

  private mutating func finishMessage(_ onFrame: (Frame) -> Void) {
    let frame = Frame(isCompressed: isCompressed, bytes: body)
    body = []
    expectedLength = nil
    onFrame(frame)
  }
}

/// Writes gRPC's 5-byte prefix in front of a message.
enum MessageFramer {
  static func frame(_ message: UnsafeRawBufferPointer, compressed: Bool, into out: inout [UInt8]) {
    let length = UInt32(message.count)
    out.append(compressed ? 1 : 0)
    out.append(UInt8(truncatingIfNeeded: length >> 24))
    out.append(UInt8(truncatingIfNeeded: length >> 16))
    out.append(UInt8(truncatingIfNeeded: length >> 8))
    out.append(UInt8(truncatingIfNeeded: length))
    out.append(contentsOf: message)
  }
}
