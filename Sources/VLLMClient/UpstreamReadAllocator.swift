import NIOCore

/// The receive buffers of an upstream connection: a read goes into the buffer the loop's last
/// read let go of (`SpareReadBuffer`), or into one of its own, sized as NIO's adaptive
/// allocator would size it, which goes as soon as the response's reader lets go of it.
///
/// NIO otherwise keeps a connection's receive buffer for its next read, as large as its largest
/// read so far (2 KiB at first). A streamed response is a read of a few hundred bytes every few
/// dozen milliseconds, so ten thousand open streams would hold twenty megabytes of buffers that
/// sit empty between tokens. NIO still keeps the first buffer a connection reads into (its pool
/// stores the first one it makes), hence the small first size, and the spare is never that one.
///
/// Takes a connection with `maxMessagesPerRead` 1: NIO's pool keeps one buffer per message of a
/// read cycle, and with more it would keep those too.
struct UpstreamReadAllocator: RecvByteBufferAllocator {
  /// The first read's size: a response head (vLLM's is under 200 bytes) and usually its first
  /// event. A larger first read fills it and continues in the next one.
  static let firstReadSize = 512

  private var sizes = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: firstReadSize, maximum: 64 * 1024)
  /// The loop's spare buffer.
  private let spare: SpareReadBuffer
  /// Whether the connection has read: its first buffer is NIO's to keep, not the spare.
  private var hasRead = false

  init(spare: SpareReadBuffer) {
    self.spare = spare
  }

  func buffer(allocator: ByteBufferAllocator) -> ByteBuffer {
    if hasRead, let buffer = spare.take(minimumCapacity: sizes.nextBufferSize() ?? Self.firstReadSize) {
      return buffer
    }
    return sizes.buffer(allocator: allocator)
  }

  /// No size to reuse a kept buffer at: NIO then asks `buffer(allocator:)` for each read.
  func nextBufferSize() -> Int? { nil }

  /// Always "may grow": NIO reuses its kept buffer only when the allocator says it will not.
  mutating func record(actualReadBytes: Int) -> Bool {
    hasRead = true
    _ = sizes.record(actualReadBytes: actualReadBytes)
    return true
  }
}

/// One receive buffer that an event loop's upstream connections take turns reading into: the
/// connection that read into it gives it back once the read is parsed, and the next read on the
/// loop takes it if nothing else still holds it (a partial line kept for the next read does).
/// Each read had a buffer allocated and freed for it, about 350 instructions a unary call
/// (callgrind); one spare for the whole loop costs no memory per open stream.
final class SpareReadBuffer: Sendable {
  private let buffer: NIOLoopBoundBox<ByteBuffer?>

  init(eventLoop: any EventLoop) {
    buffer = .makeEmptyBox(valueType: ByteBuffer.self, eventLoop: eventLoop)
  }

  /// The spare, emptied and with room for `minimumCapacity` bytes, when no one else holds it.
  func take(minimumCapacity: Int) -> ByteBuffer? {
    guard var taken = buffer.value.take() else { return nil }
    let isOnlyHolder = taken.modifyIfUniquelyOwned { $0.clear(minimumCapacity: minimumCapacity) } != nil
    return isOnlyHolder ? taken : nil
  }

  /// A buffer a read went into, parsed: the spare for the loop's next read.
  func giveBack(_ read: ByteBuffer) {
    buffer.value = read
  }
}
