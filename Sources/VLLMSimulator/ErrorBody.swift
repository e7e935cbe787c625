import ProtoJSON

/// vLLM's error bodies, in each of the shapes a real server sends.
enum ErrorBody {
  /// `{"error": {"message", "type", "param", "code"}}`, compact as in a response body.
  static func standard(status: Int, message: String, type: String? = nil, param: String? = nil) -> [UInt8] {
    var json = JSONWriter()
    json.beginObject()
    json.key("error")
    json.beginObject()
    json.key("message")
    json.string(message)
    json.key("type")
    json.string(type ?? Fault.errorType(for: status))
    json.key("param")
    if let param { json.string(param) } else { json.null() }
    json.key("code")
    json.int(Int64(status))
    json.endObject()
    json.endObject()
    return json.bytes
  }

  /// The same object as a stream's error event: vLLM writes it with `json.dumps` defaults, with
  /// spaces after ':' and ','.
  static func streamEvent(status: Int, message: String) -> [UInt8] {
    var escaped = JSONWriter()
    escaped.string(message)
    let text =
      "{\"error\": {\"message\": \(String(decoding: escaped.bytes, as: UTF8.self)), \"type\": \"\(Fault.errorType(for: status))\", \"param\": null, \"code\": \(status)}}"
    return Array(text.utf8)
  }

  /// `{"error": "Unauthorized"}` from --api-key.
  static let unauthorized = Array("{\"error\":\"Unauthorized\"}".utf8)
  /// `{"detail": "Not Found"}` for routes a server does not have.
  static let notFound = Array("{\"detail\":\"Not Found\"}".utf8)
  /// `{"detail": "Method Not Allowed"}`.
  static let methodNotAllowed = Array("{\"detail\":\"Method Not Allowed\"}".utf8)
}
