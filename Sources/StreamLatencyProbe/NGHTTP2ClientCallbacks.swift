import CNGHTTP2

/// The C callbacks of the probe's nghttp2 client sessions. Each finds its connection through
/// nghttp2's `user_data`.
enum NGHTTP2ClientCallbacks {
  /// A new callbacks table; the caller deletes it once the session is created.
  static func make() -> OpaquePointer? {
    var callbacks: OpaquePointer? = nil
    nghttp2_session_callbacks_new(&callbacks)
    nghttp2_session_callbacks_set_on_header_callback(callbacks) {
      _, frame, name, nameLength, value, valueLength, _, userData in
      guard let frame, let name, let value, UInt32(frame.pointee.hd.type) == NGHTTP2_HEADERS.rawValue else {
        return 0
      }
      withConnection(userData) {
        $0.header(
          streamID: frame.pointee.hd.stream_id, name: UnsafeRawBufferPointer(start: name, count: nameLength),
          value: UnsafeRawBufferPointer(start: value, count: valueLength))
      }
      return 0
    }
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
      guard let frame, frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0 else { return 0 }
      switch UInt32(frame.pointee.hd.type) {
      case NGHTTP2_HEADERS.rawValue, NGHTTP2_DATA.rawValue:
        withConnection(userData) { $0.endOfResponse(streamID: frame.pointee.hd.stream_id) }
      default:
        break
      }
      return 0
    }
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) {
      _, _, streamID, data, length, userData in
      guard let data else { return 0 }
      withConnection(userData) {
        $0.data(streamID: streamID, bytes: UnsafeRawBufferPointer(start: data, count: length))
      }
      return 0
    }
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, userData in
      withConnection(userData) { $0.streamClosed(streamID: streamID, errorCode: errorCode) }
      return 0
    }
    nghttp2_session_callbacks_set_on_frame_send_callback(callbacks) { _, frame, userData in
      guard let frame, frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0 else { return 0 }
      withConnection(userData) { $0.sentEndOfRequest(streamID: frame.pointee.hd.stream_id) }
      return 0
    }
    return callbacks
  }

  /// The data source of every request body: copies the body into nghttp2's buffer.
  static let readRequestBody: nghttp2_data_source_read_callback = {
    _, streamID, buffer, length, flags, _, userData in
    guard let buffer, let flags else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
    return withConnection(userData) {
      $0.readRequestBody(streamID: streamID, into: buffer, capacity: length, flags: flags)
    }
  }
}

// A free function, not a static member: a closure that becomes a C function pointer may not
// capture anything, and a static member would capture the enum's metatype.
/// The connection behind `user_data`, without a retain and release per callback: its channel
/// handler keeps it alive for as long as the session exists.
private func withConnection<Result>(
  _ userData: UnsafeMutableRawPointer?, _ body: (HTTP2ProbeConnection) -> Result
) -> Result {
  Unmanaged<HTTP2ProbeConnection>.fromOpaque(userData!)._withUnsafeGuaranteedRef(body)
}
