import NIOCore

/// The receive buffers of an upstream connection: each read gets a buffer of its own, sized as
/// NIO's adaptive allocator would size it, which goes as soon as the response's reader lets go
/// of it.
///
/// NIO otherwise keeps a connection's receive buffer for its next read, as large as its largest
/// read so far (2 KiB at first). A streamed response is a read of a few hundred bytes every few
/// dozen milliseconds, so ten thousand open streams would hold twenty megabytes of buffers that
/// sit empty between tokens. NIO still keeps the first buffer a connection reads into (its pool
/// stores the first one it makes), hence the small first size.
///
/// Takes a connection with `maxMessagesPerRead` 1: NIO's pool keeps one buffer per message of a
/// read cycle, and with more it would keep those too.
struct UpstreamReadAllocator: RecvByteBufferAllocator {
  /// The first read's size: a response head (vLLM's is under 200 bytes) and usually its first
  /// event. A larger first read fills it and continues in the next one.
  static let firstReadSize = 512

  private var sizes = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: firstReadSize, maximum: 64 * 1024)

  func buffer(allocator: ByteBufferAllocator) -> ByteBuffer {
    sizes.buffer(allocator: allocator)
  }

  /// No size to reuse a kept buffer at: NIO then makes a new one for each read.
  func nextBufferSize() -> Int? { nil }

  /// Always "may grow": NIO reuses its kept buffer only when the allocator says it will not.
  mutating func record(actualReadBytes: Int) -> Bool {
    _ = sizes.record(actualReadBytes: actualReadBytes)
    return true
  }
}
