import NIOCore

/// Where a connection's HTTP/2 bytes go: the channel handler that owns the connection.
protocol ConnectionOutput: AnyObject {
  var allocator: ByteBufferAllocator { get }
  /// False while the socket's send buffer is full: leave further frames queued in nghttp2, whose
  /// own limits then catch a peer that floods us with requests for replies it never reads.
  var isWritable: Bool { get }
  func write(_ bytes: ByteBuffer)
  func closeConnection()
}
