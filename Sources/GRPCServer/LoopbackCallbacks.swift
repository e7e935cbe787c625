import CNGHTTP2

/// The C callbacks of the loopback client session, each finding its client through `user_data`.
/// In an ordinary (nonisolated) file for the same reason as NGHTTP2Callbacks.
enum LoopbackCallbacks {
  static func make() -> OpaquePointer? {
    var callbacks: OpaquePointer? = nil
    nghttp2_session_callbacks_new(&callbacks)
    nghttp2_session_callbacks_set_on_header_callback(callbacks) {
      _, frame, name, nameLength, value, valueLength, _, userData in
      guard let frame, let name, let value, isResponseHeaders(frame) else { return 0 }
      withClient(userData) {
        $0.header(
          streamID: frame.pointee.hd.stream_id, name: UnsafeRawBufferPointer(start: name, count: nameLength),
          value: UnsafeRawBufferPointer(start: value, count: valueLength))
      }
      return 0
    }
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
      guard let frame else { return 0 }
      let streamID = frame.pointee.hd.stream_id
      let endsStream = frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
      switch UInt32(frame.pointee.hd.type) {
      case NGHTTP2_HEADERS.rawValue:
        if isResponseHeaders(frame) {
          withClient(userData) { $0.responseHeadersComplete(streamID: streamID, endsStream: endsStream) }
        } else if endsStream {
          withClient(userData) { $0.ended(streamID: streamID) }  // trailers: web calls have none
        }
      case NGHTTP2_DATA.rawValue:
        if endsStream { withClient(userData) { $0.ended(streamID: streamID) } }
      default:
        break
      }
      return 0
    }
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) {
      _, _, streamID, data, length, userData in
      guard let data else { return 0 }
      withClient(userData) { $0.data(streamID: streamID, bytes: UnsafeRawBufferPointer(start: data, count: length)) }
      return 0
    }
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, _, userData in
      withClient(userData) { $0.streamClosed(streamID: streamID) }
      return 0
    }
    return callbacks
  }

  /// The data source of every request body.
  static let readRequestBody: nghttp2_data_source_read_callback = {
    _, streamID, buffer, length, flags, _, userData in
    guard let buffer, let flags else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
    return withClient(userData) { $0.readRequestBody(streamID: streamID, into: buffer, capacity: length, flags: flags) }
  }
}

private func isResponseHeaders(_ frame: UnsafePointer<nghttp2_frame>) -> Bool {
  UInt32(frame.pointee.hd.type) == NGHTTP2_HEADERS.rawValue && frame.pointee.headers.cat == NGHTTP2_HCAT_RESPONSE
}

/// The client behind `user_data`; the web handler keeps it alive while nghttp2 can call back.
private func withClient<Result>(_ userData: UnsafeMutableRawPointer?, _ body: (LoopbackHTTP2Client) -> Result)
  -> Result
{
  Unmanaged<LoopbackHTTP2Client>.fromOpaque(userData!)._withUnsafeGuaranteedRef(body)
}
