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
      withConnection(userData) { $0.beginHeaders(streamID: frame.pointee.hd.stream_id) }
      return 0
    }
    nghttp2_session_callbacks_set_on_header_callback(callbacks) {
      _, frame, name, nameLength, value, valueLength, _, userData in
      guard let frame, let nameStart = name, let valueStart = value,
        UInt32(frame.pointee.hd.type) == NGHTTP2_HEADERS.rawValue
      else { return 0 }
      let streamID = frame.pointee.hd.stream_id
      let name = UnsafeRawBufferPointer(start: nameStart, count: nameLength)
      let value = UnsafeRawBufferPointer(start: valueStart, count: valueLength)
      if frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST {
        withConnection(userData) { $0.header(streamID: streamID, name: name, value: value) }
      } else {
        withConnection(userData) { $0.trailer(streamID: streamID, name: name, value: value) }
      }
      return 0
    }
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
      guard let frame else { return 0 }
      let streamID = frame.pointee.hd.stream_id
      let endsStream = frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
      switch UInt32(frame.pointee.hd.type) {
      case NGHTTP2_HEADERS.rawValue:
        let isRequest = frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST
        withConnection(userData) { connection in
          if isRequest {
            connection.requestHeadersComplete(streamID: streamID, endsStream: endsStream)
          } else {
            connection.trailersComplete(streamID: streamID, endsStream: endsStream)
          }
          if endsStream { connection.endOfRequest(streamID: streamID) }
        }
      case NGHTTP2_DATA.rawValue:
        if endsStream {
          withConnection(userData) { $0.endOfRequest(streamID: streamID) }
        } else if frame.pointee.hd.length == 0 {
          withConnection(userData) { $0.emptyDataReceived(streamID: streamID) }
        }
      case NGHTTP2_SETTINGS.rawValue:
        let isAck = frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0
        withConnection(userData) { $0.settingsReceived(isAck: isAck) }
      case NGHTTP2_PING.rawValue:
        if frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 {
          withConnection(userData) { $0.pingReceived() }
        }
      case NGHTTP2_WINDOW_UPDATE.rawValue:
        withConnection(userData) { $0.windowUpdateReceived() }
      case NGHTTP2_RST_STREAM.rawValue:
        withConnection(userData) { $0.resetReceived(streamID: streamID) }
      default:
        break
      }
      // A connection being ended for misbehaviour reads no further frame of the same input.
      return withConnection(userData) { $0.isTerminating } ? Int32(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) : 0
    }
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(callbacks) { _, frame, error, userData in
      guard let frame else { return 0 }
      let streamID = frame.pointee.hd.stream_id
      return withConnection(userData) {
        $0.invalidFrameReceived(streamID: streamID, error: error)
        return $0.isTerminating ? Int32(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) : 0
      }
    }
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) {
      _, _, streamID, data, length, userData in
      guard let data else { return 0 }
      withConnection(userData) {
        $0.data(streamID: streamID, bytes: UnsafeRawBufferPointer(start: data, count: length))
      }
      return 0
    }
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, _, userData in
      withConnection(userData) { $0.streamClosed(streamID: streamID) }
      return 0
    }
    nghttp2_session_callbacks_set_on_frame_send_callback(callbacks) { _, frame, userData in
      guard let frame else { return 0 }
      let streamID = frame.pointee.hd.stream_id
      switch UInt32(frame.pointee.hd.type) {
      case NGHTTP2_DATA.rawValue:
        // gRPC-Web and Connect end their streams with the body rather than trailers.
        let endsStream = frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        withConnection(userData) { connection in
          connection.dataSent()
          if endsStream { connection.sentEndOfStream(streamID: streamID) }
        }
      case NGHTTP2_HEADERS.rawValue:
        let endsStream = frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        withConnection(userData) { connection in
          connection.headersSent()
          if endsStream { connection.sentEndOfStream(streamID: streamID) }
        }
      case NGHTTP2_RST_STREAM.rawValue:
        let errorCode = frame.pointee.rst_stream.error_code
        withConnection(userData) { $0.resetSent(streamID: streamID, errorCode: errorCode) }
      default:
        break
      }
      return 0
    }
    nghttp2_session_callbacks_set_on_frame_not_send_callback(callbacks) { _, frame, error, userData in
      guard let frame, UInt32(frame.pointee.hd.type) == NGHTTP2_HEADERS.rawValue else { return 0 }
      let streamID = frame.pointee.hd.stream_id
      withConnection(userData) { $0.headersNotSent(streamID: streamID, error: error) }
      return 0
    }
    return callbacks
  }

  /// The data source of every response body: copies queued messages into nghttp2's buffer.
  static let readResponseData: nghttp2_data_source_read_callback = {
    _, streamID, buffer, length, flags, _, userData in
    guard let buffer, let flags else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
    return withConnection(userData) {
      $0.readResponseData(streamID: streamID, into: buffer, capacity: length, flags: flags)
    }
  }

}

// Free functions, not static members: a closure that becomes a C function pointer may not
// capture anything, and a static member would capture the enum's metatype.
private func isRequestHeaders(_ frame: UnsafePointer<nghttp2_frame>) -> Bool {
  UInt32(frame.pointee.hd.type) == NGHTTP2_HEADERS.rawValue && frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST
}

/// The connection behind `user_data`, without a retain and release per callback: the channel
/// handler keeps it alive for as long as nghttp2 can call back.
private func withConnection<Result>(
  _ userData: UnsafeMutableRawPointer?, _ body: (HTTP2ServerConnection) -> Result
) -> Result {
  Unmanaged<HTTP2ServerConnection>.fromOpaque(userData!)._withUnsafeGuaranteedRef(body)
}
