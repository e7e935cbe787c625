/// Receives one call's request messages, on the event loop of the call's connection. The handler
/// answers through its `ServerCall`; it learns of cancellation through `ServerCall.onCancel`.
public protocol ServerCallHandler: AnyObject {
  /// One complete, decompressed request message.
  func didReceive(_ message: [UInt8])
  /// The client half-closed: no more request messages will come.
  func didReceiveEnd()
}

/// Why a call ended before its handler finished it.
public enum CancellationReason: Sendable, Hashable {
  /// The client sent RST_STREAM.
  case clientReset
  /// The connection closed or failed.
  case connectionClosed
  /// The call's `grpc-timeout` elapsed; the client has been sent DEADLINE_EXCEEDED.
  case deadlineExceeded
  /// The request broke the protocol (bad framing, oversized message); the client has been told.
  case protocolViolation
  /// The client read nothing of the call's queued answer for the stream idle timeout; the
  /// stream has been reset.
  case streamIdle
}
