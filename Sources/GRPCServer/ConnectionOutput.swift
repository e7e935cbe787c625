import NIOCore

/// Where a connection's HTTP/2 bytes go: the channel handler that owns the connection.
protocol ConnectionOutput: AnyObject {
  var allocator: ByteBufferAllocator { get }
  func write(_ bytes: ByteBuffer)
  func closeConnection()
}
