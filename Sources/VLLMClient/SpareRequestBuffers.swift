import NIOCore

/// Buffers whose requests went out, kept by a loop's pool so its next requests are written into
/// them: a new ByteBuffer for each request cost two allocations and their frees (its storage
/// object and its bytes), about 500 instructions a unary call (callgrind). A buffer NIO is
/// still writing from is shared; `clear()` then gives it new storage, so reuse never touches
/// bytes on their way out.
struct SpareRequestBuffers {
  /// Enough for the requests a loop sends between two reads of responses at a busy moment.
  static let maximumKept = 16
  /// A buffer that held a large request (a long prompt) is let go rather than kept.
  static let largestKeptCapacity = 16 * 1024

  private var buffers: [ByteBuffer] = []

  var count: Int { buffers.count }

  /// A kept buffer, if any, no longer kept.
  mutating func take() -> ByteBuffer? {
    buffers.popLast()
  }

  mutating func keep(_ buffer: ByteBuffer) {
    guard buffers.count < Self.maximumKept, buffer.capacity <= Self.largestKeptCapacity else { return }
    buffers.append(buffer)
  }
}
