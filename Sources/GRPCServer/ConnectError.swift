/// Connect's error and end-of-stream JSON (connectrpc.com/docs/protocol), built from a gRPC status
/// and its trailers. Rich error details come from `grpc-status-details-bin`, the google.rpc.Status
/// the handler attached, so Connect clients see the same details gRPC clients do.
enum ConnectError {
  static let detailsKey = "grpc-status-details-bin"

  /// Connect's name of a code: gRPC's in lower snake case, but with one L in "canceled".
  static func codeName(_ code: Status.Code) -> String {
    code == .cancelled ? "canceled" : code.name.lowercased()
  }

  /// The HTTP status of a unary error, as the Connect specification maps codes.
  static func httpStatus(_ code: Status.Code) -> Int {
    switch code {
    case .ok: 200
    case .cancelled: 499
    case .invalidArgument, .failedPrecondition, .outOfRange: 400
    case .deadlineExceeded: 504
    case .notFound: 404
    case .alreadyExists, .aborted: 409
    case .permissionDenied: 403
    case .resourceExhausted: 429
    case .unimplemented: 501
    case .unavailable: 503
    case .unauthenticated: 401
    case .unknown, .internal, .dataLoss: 500
    }
  }

  /// `{"code": ..., "message": ..., "details": [...]}`, the body of a unary error.
  static func json(_ status: Status, trailers: Metadata) -> [UInt8] {
    var out: [UInt8] = []
    appendError(status, trailers: trailers, to: &out)
    return out
  }

  /// The payload of a stream's last message: its error, if any, and its trailing metadata.
  static func endStreamMessage(_ status: Status, trailers: Metadata) -> [UInt8] {
    var out = Array("{".utf8)
    if status.code != .ok {
      out += Array("\"error\":".utf8)
      appendError(status, trailers: trailers, to: &out)
    }
    var keys: [String] = []
    for entry in trailers where entry.key != detailsKey && !keys.contains(entry.key) { keys.append(entry.key) }
    if !keys.isEmpty {
      if status.code != .ok { out.append(UInt8(ascii: ",")) }
      out += Array("\"metadata\":{".utf8)
      for (index, key) in keys.enumerated() {
        if index > 0 { out.append(UInt8(ascii: ",")) }
        appendString(key, to: &out)
        out += Array(":[".utf8)
        var first = true
        for entry in trailers where entry.key == key {
          if !first { out.append(UInt8(ascii: ",")) }
          first = false
          switch entry.value {
          case .string(let text): appendString(text, to: &out)
          case .binary(let bytes): appendString(Base64.encode(bytes), to: &out)
          }
        }
        out.append(UInt8(ascii: "]"))
      }
      out.append(UInt8(ascii: "}"))
    }
    out.append(UInt8(ascii: "}"))
    return out
  }

  private static func appendError(_ status: Status, trailers: Metadata, to out: inout [UInt8]) {
    out += Array("{\"code\":".utf8)
    appendString(codeName(status.code), to: &out)
    if !status.message.isEmpty {
      out += Array(",\"message\":".utf8)
      appendString(status.message, to: &out)
    }
    let details = trailers.firstBinary(detailsKey).map(statusDetails) ?? []
    if !details.isEmpty {
      out += Array(",\"details\":[".utf8)
      for (index, detail) in details.enumerated() {
        if index > 0 { out.append(UInt8(ascii: ",")) }
        out += Array("{\"type\":".utf8)
        appendString(detail.type, to: &out)
        out += Array(",\"value\":".utf8)
        appendString(Base64.encode(detail.value), to: &out)
        out.append(UInt8(ascii: "}"))
      }
      out.append(UInt8(ascii: "]"))
    }
    out.append(UInt8(ascii: "}"))
  }

  /// The `details` (google.protobuf.Any, field 3) of a serialized google.rpc.Status, each as its
  /// type's full name and value bytes. What does not parse is left out.
  static func statusDetails(_ bytes: [UInt8]) -> [(type: String, value: [UInt8])] {
    var details: [(type: String, value: [UInt8])] = []
    var reader = WireFields(bytes[...])
    while let field = reader.next() {
      guard field.number == 3, let any = field.bytes else { continue }
      var typeURL = ""
      var value: [UInt8] = []
      var anyReader = WireFields(any)
      while let anyField = anyReader.next() {
        if anyField.number == 1, let text = anyField.bytes { typeURL = String(decoding: text, as: UTF8.self) }
        if anyField.number == 2, let payload = anyField.bytes { value = Array(payload) }
      }
      let type = typeURL.split(separator: "/").last.map(String.init) ?? typeURL
      if !type.isEmpty { details.append((type, value)) }
    }
    return details
  }

  static func appendString(_ text: String, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    for byte in text.utf8 {
      switch byte {
      case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
      case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
      case 0..<0x20:
        let hex = Array("0123456789abcdef".utf8)
        out += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
      default: out.append(byte)
      }
    }
    out.append(UInt8(ascii: "\""))
  }
}

/// A walk over the top-level fields of protobuf wire bytes: just enough to read a
/// google.rpc.Status without a protobuf library in this module.
struct WireFields {
  struct Field {
    var number: UInt64
    /// The payload of a length-delimited field; nil for the other wire types.
    var bytes: ArraySlice<UInt8>?
  }

  private var rest: ArraySlice<UInt8>

  init(_ bytes: ArraySlice<UInt8>) {
    rest = bytes
  }

  mutating func next() -> Field? {
    guard let key = varint() else { return nil }
    switch key & 7 {
    case 0: return varint() == nil ? nil : Field(number: key >> 3, bytes: nil)
    case 1: return skip(8) ? Field(number: key >> 3, bytes: nil) : nil
    case 5: return skip(4) ? Field(number: key >> 3, bytes: nil) : nil
    case 2:
      guard let length = varint(), length <= UInt64(rest.count) else { return nil }
      let payload = rest.prefix(Int(length))
      rest = rest.dropFirst(Int(length))
      return Field(number: key >> 3, bytes: payload)
    default: return nil
    }
  }

  private mutating func skip(_ count: Int) -> Bool {
    guard rest.count >= count else { return false }
    rest = rest.dropFirst(count)
    return true
  }

  private mutating func varint() -> UInt64? {
    var value: UInt64 = 0
    var shift: UInt64 = 0
    while let byte = rest.first, shift < 64 {
      rest = rest.dropFirst()
      value |= UInt64(byte & 0x7F) << shift
      if byte < 0x80 { return value }
      shift += 7
    }
    return nil
  }
}
