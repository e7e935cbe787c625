import CNGHTTP2

/// What the loopback client reports of the response to its request.
protocol LoopbackClientDelegate: AnyObject {
  func responseHead(status: Int, headers: [(String, String)])
  func responseBody(_ bytes: UnsafeRawBufferPointer)
  func responseEnd()
  /// The stream closed before its response ended (the server reset it).
  func responseAbandoned()
}

/// An in-memory nghttp2 client session that turns HTTP/1.1 requests into HTTP/2 streams of the
/// server's own HTTP2ServerConnection, so web calls over HTTP/1.1 get every check, limit and
/// defence HTTP/2 calls get, from the same code. One request at a time, as HTTP/1.1 has.
final class LoopbackHTTP2Client {
  // SAFETY of the C boundary: the nghttp2_session* this object owns; freed in `close()`.
  private var session: OpaquePointer?
  unowned let delegate: any LoopbackClientDelegate
  private(set) var streamID: Int32 = 0
  private var requestBody: [UInt8] = []
  private var requestBodyRead = 0
  private var requestEnded = false
  private var isBodyDeferred = false
  private var responseStatus = 0
  private var responseHeaders: [(String, String)] = []
  private(set) var isResponding = false
  /// Calls into nghttp2 under way: a close meanwhile (the channel closing from inside a write the
  /// callbacks made) frees the session once they have unwound.
  private var sessionDepth = 0
  private var closedDuringUse = false

  init(delegate: any LoopbackClientDelegate, windowSize: Int) {
    self.delegate = delegate
    let callbacks = LoopbackCallbacks.make()
    defer { nghttp2_session_callbacks_del(callbacks) }
    // SAFETY of the C boundary: nghttp2 keeps this unretained pointer as user_data; the session
    // is deleted in close() before this object can go away.
    let status = nghttp2_session_client_new(&session, callbacks, Unmanaged.passUnretained(self).toOpaque())
    precondition(status == 0, "nghttp2_session_client_new failed: \(status)")
    var settings = [
      nghttp2_settings_entry(
        settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: UInt32(windowSize)),
      nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0),
    ]
    nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
  }

  /// Opens a stream for a request; false when nghttp2 refuses its headers.
  func submitRequest(headers: [(String, String)]) -> Bool {
    guard let session else { return false }
    requestBody = []
    requestBodyRead = 0
    requestEnded = false
    isBodyDeferred = false
    responseStatus = 0
    responseHeaders = []
    var block = HeaderBlock()
    for (name, value) in headers { block.add(name, value) }
    var provider = nghttp2_data_provider()
    provider.read_callback = LoopbackCallbacks.readRequestBody
    let id = block.withNameValues { pairs, count in
      nghttp2_submit_request(session, nil, pairs, count, &provider, nil)
    }
    guard id > 0 else { return false }
    streamID = id
    isResponding = true
    return true
  }

  func appendBody(_ bytes: UnsafeRawBufferPointer) {
    guard isResponding else { return }
    if requestBodyRead > 0 && requestBodyRead == requestBody.count {
      requestBody.removeAll(keepingCapacity: true)
      requestBodyRead = 0
    }
    requestBody.append(contentsOf: bytes)
    resumeBody()
  }

  func endBody() {
    guard isResponding else { return }
    requestEnded = true
    resumeBody()
  }

  private func resumeBody() {
    guard let session, isBodyDeferred else { return }
    isBodyDeferred = false
    nghttp2_session_resume_data(session, streamID)
  }

  /// The server's output; false when it is not HTTP/2 the client accepts.
  func receive(_ bytes: UnsafeRawBufferPointer) -> Bool {
    guard let session, let base = bytes.baseAddress else { return session != nil }
    sessionDepth += 1
    defer { leaveSession() }
    return nghttp2_session_mem_recv(session, base.assumingMemoryBound(to: UInt8.self), bytes.count) >= 0
  }

  private func leaveSession() {
    sessionDepth -= 1
    if sessionDepth == 0 && closedDuringUse {
      closedDuringUse = false
      if let session {
        nghttp2_session_del(session)
        self.session = nil
      }
    }
  }

  /// Calls `body` with each piece of output the client has for the server.
  func drainOutput(_ body: (UnsafeRawBufferPointer) -> Void) -> Bool {
    guard let session else { return false }
    sessionDepth += 1
    defer { leaveSession() }
    while !closedDuringUse {
      var chunk: UnsafePointer<UInt8>? = nil
      let length = nghttp2_session_mem_send(session, &chunk)
      guard length >= 0 else { return false }
      guard length > 0, let chunk else { return true }
      body(UnsafeRawBufferPointer(start: chunk, count: length))
    }
    return false
  }

  func close() {
    isResponding = false
    if sessionDepth > 0 {
      closedDuringUse = true
      return
    }
    if let session {
      nghttp2_session_del(session)
      self.session = nil
    }
  }

  // MARK: nghttp2 callbacks

  func header(streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
    guard streamID == self.streamID else { return }
    let name = String(decoding: name, as: UTF8.self)
    let value = String(decoding: value, as: UTF8.self)
    if name == ":status" {
      responseStatus = Int(value) ?? 502
    } else if !name.hasPrefix(":") {
      responseHeaders.append((name, value))
    }
  }

  func responseHeadersComplete(streamID: Int32, endsStream: Bool) {
    guard streamID == self.streamID, isResponding, responseStatus != 0 else { return }
    delegate.responseHead(status: responseStatus, headers: responseHeaders)
    responseStatus = 0
    responseHeaders = []
    if endsStream { ended(streamID: streamID) }
  }

  func data(streamID: Int32, bytes: UnsafeRawBufferPointer) {
    guard streamID == self.streamID, isResponding else { return }
    delegate.responseBody(bytes)
  }

  func ended(streamID: Int32) {
    guard streamID == self.streamID, isResponding else { return }
    isResponding = false
    delegate.responseEnd()
  }

  func streamClosed(streamID: Int32) {
    guard streamID == self.streamID, isResponding else { return }
    isResponding = false
    delegate.responseAbandoned()
  }

  func readRequestBody(
    streamID: Int32, into destination: UnsafeMutablePointer<UInt8>, capacity: Int,
    flags: UnsafeMutablePointer<UInt32>
  ) -> Int {
    guard streamID == self.streamID else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
    let count = min(capacity, requestBody.count - requestBodyRead)
    if count > 0 {
      requestBody.withUnsafeBytes { source in
        UnsafeMutableRawPointer(destination).copyMemory(from: source.baseAddress! + requestBodyRead, byteCount: count)
      }
      requestBodyRead += count
    }
    if requestBodyRead == requestBody.count && requestEnded {
      flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
      return count
    }
    if count > 0 { return count }
    isBodyDeferred = true
    return Int(NGHTTP2_ERR_DEFERRED.rawValue)
  }
}
