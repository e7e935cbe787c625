import CNGHTTP2

/// The C callbacks nghttp2 calls while it parses input and produces output. Each finds its
/// connection through nghttp2's `user_data`. They live in this ordinary (nonisolated) file on
/// purpose: a closure written in main.swift would be main-actor isolated and trap when nghttp2
/// calls it from an event-loop thread.
enum NGHTTP2Callbacks {
  /// A new callbacks table; the caller deletes it once the session is created.
  static func make() -> OpaquePointer? {
    var callbacks: OpaquePointer? = nil
    nghttp2_session_callbacks_new(&callbacks)
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
      guard let frame, isRequestHeaders(frame) else { return 0 }
      connection(userData).beginHeaders(streamID: frame.pointee.hd.stream_id)
      return 0
    }
    nghttp2_session_callbacks_set_on_header_callback(callbacks) {
      _, frame, name, nameLength, value, valueLength, _, userData in
      guard let frame, let name, let value, isRequestHeaders(frame) else { return 0 }
      connection(userData).header(
        streamID: frame.pointee.hd.stream_id,
        name: String(decoding: UnsafeBufferPointer(start: name, count: nameLength), as: UTF8.self),
        value: String(decoding: UnsafeBufferPointer(start: value, count: valueLength), as: UTF8.self))
      return 0
    }
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
      guard let frame else { return 0 }
      let streamID = frame.pointee.hd.stream_id
      let endsStream = frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
      switch UInt32(frame.pointee.hd.type) {
      case NGHTTP2_HEADERS.rawValue:
        let connection = connection(userData)
        if frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST {
          connection.requestHeadersComplete(streamID: streamID)
        }
        if endsStream { connection.endOfRequest(streamID: streamID) }
      case NGHTTP2_DATA.rawValue:
        if endsStream { connection(userData).endOfRequest(streamID: streamID) }
      default:
        break
      }
      return 0
    }
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) {
      _, _, streamID, data, length, userData in
      guard let data else { return 0 }
      connection(userData).data(streamID: streamID, bytes: UnsafeRawBufferPointer(start: data, count: length))
      return 0
    }
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, _, userData in
      connection(userData).streamClosed(streamID: streamID)
      return 0
    }
    nghttp2_session_callbacks_set_on_frame_send_callback(callbacks) { _, frame, userData in
      guard let frame, UInt32(frame.pointee.hd.type) == NGHTTP2_HEADERS.rawValue,
        frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
      else { return 0 }
      connection(userData).sentEndOfStream(streamID: frame.pointee.hd.stream_id)
      return 0
    }
    return callbacks
  }

  /// The data source of every response body: copies queued messages into nghttp2's buffer.
  static let readResponseData: nghttp2_data_source_read_callback = {
    _, streamID, buffer, length, flags, _, userData in
    guard let buffer, let flags else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
    return connection(userData).readResponseData(
      streamID: streamID, into: buffer, capacity: length, flags: flags)
  }

}

// Free functions, not static members: a closure that becomes a C function pointer may not
// capture anything, and a static member would capture the enum's metatype.
private func isRequestHeaders(_ frame: UnsafePointer<nghttp2_frame>) -> Bool {
  UInt32(frame.pointee.hd.type) == NGHTTP2_HEADERS.rawValue && frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST
}

private func connection(_ userData: UnsafeMutableRawPointer?) -> HTTP2ServerConnection {
  Unmanaged<HTTP2ServerConnection>.fromOpaque(userData!).takeUnretainedValue()
}
