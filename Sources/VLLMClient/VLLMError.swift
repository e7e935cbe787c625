import NIOCore
import ProtoJSON

/// A failure of an upstream call, normalised from every shape vLLM uses.
public struct VLLMError: Error, Sendable, Equatable, CustomStringConvertible {
  public enum Kind: Sendable, Equatable {
    /// vLLM answered with an error (an HTTP status, or an error object in a 200 or in a stream).
    case upstream
    /// vLLM could not be reached.
    case connectionFailed
    /// The deadline passed before vLLM finished.
    case timeout
    /// The response ended early or was not what vLLM sends.
    case malformed
    /// vLLM sent nothing for longer than the client's stall timeout while a response was due.
    case stalled
  }

  public var kind: Kind
  /// The HTTP status the error stands for (vLLM's `code`, or the response status).
  public var httpStatus: Int
  public var message: String
  /// vLLM's error type, such as "BadRequestError" or "NotFoundError".
  public var type: String?
  /// The parameter at fault, such as "model" or "body.max_tokens".
  public var param: String?

  public init(kind: Kind, httpStatus: Int, message: String, type: String? = nil, param: String? = nil) {
    self.kind = kind
    self.httpStatus = httpStatus
    self.message = message
    self.type = type
    self.param = param
  }

  /// vLLM went silent for `timeout` while a response was due.
  static func stalled(after timeout: TimeAmount) -> VLLMError {
    let seconds = Double(timeout.nanoseconds) / 1e9
    let text = seconds == seconds.rounded() ? String(Int64(seconds)) : String(seconds)
    return VLLMError(
      kind: .stalled, httpStatus: 504,
      message: "vLLM sent nothing for \(text) s while a response was due; the request was abandoned")
  }

  public var description: String {
    "vLLM \(httpStatus)\(type.map { " \($0)" } ?? ""): \(message)\(param.map { " (param \($0))" } ?? "")"
  }

  /// The error a non-2xx response stands for: `{"error": {...}}`, `{"error": "Unauthorized"}`,
  /// `{"detail": ...}`, or any other body.
  public static func fromResponse(status: Int, body: [UInt8]) -> VLLMError {
    if let error = fromErrorObject(body, fallbackStatus: status) { return error }
    let text = String(decoding: body.prefix(512), as: UTF8.self)
    return VLLMError(
      kind: .upstream, httpStatus: status, message: text.isEmpty ? "vLLM answered HTTP \(status)" : text)
  }

  /// The error in a stream event or an HTTP 200 body, if it is one. vLLM writes those with
  /// "error" as their first key; checking only that keeps ordinary replies and chunks from being
  /// read twice.
  @inlinable
  public static func fromErrorEvent(_ json: [UInt8]) -> VLLMError? {
    // Nearly every event is a chunk, `{"id":...`: ruled out here, in the caller's code, where
    // the call across the module cost about 70 instructions an event (callgrind).
    if json.count > 2 && json[0] == UInt8(ascii: "{") && json[1] == UInt8(ascii: "\"")
      && json[2] != UInt8(ascii: "e")
    {
      return nil
    }
    return fromEventWithErrorKey(json)
  }

  @usableFromInline
  static func fromEventWithErrorKey(_ json: [UInt8]) -> VLLMError? {
    var index = 0
    func skipSpace() {
      while index < json.count, json[index] == 0x20 || json[index] == 0x0A || json[index] == 0x0D || json[index] == 0x09
      {
        index += 1
      }
    }
    skipSpace()
    guard index < json.count, json[index] == UInt8(ascii: "{") else { return nil }
    index += 1
    skipSpace()
    let errorKey = "\"error\"".utf8
    // Nearly every event is a chunk (`{"id":`): its second byte rules it out before the generic
    // comparison, which cost about 150 instructions an event.
    guard json.count - index >= errorKey.count, json[index + 1] == UInt8(ascii: "e"),
      json[index..<index + errorKey.count].elementsEqual(errorKey)
    else {
      return nil
    }
    return fromErrorObject(json)
  }

  /// The error in a JSON body or event that carries one (HTTP 200 bodies and stream events can);
  /// nil when the JSON is not an error object.
  public static func fromErrorObject(_ json: [UInt8], fallbackStatus: Int = 500) -> VLLMError? {
    var reader = JSONReader(json)
    guard (try? reader.peekKind()) == .object, (try? reader.beginObject()) != nil else { return nil }
    var found: VLLMError? = nil
    while let key = try? reader.nextKey() {
      switch String(decoding: key, as: UTF8.self) {
      case "error":
        found = errorValue(&reader, fallbackStatus: fallbackStatus)
      case "detail":
        guard let text = try? reader.rawValue() else { return found }
        var detail = JSONReader(Array(text))
        let message =
          (try? detail.peekKind()) == .string ? (try? detail.readString()) : String(decoding: text, as: UTF8.self)
        found = found ?? VLLMError(kind: .upstream, httpStatus: fallbackStatus, message: message ?? "")
      default:
        guard (try? reader.skipValue()) != nil else { return found }
      }
    }
    return found
  }

  private static func errorValue(_ reader: inout JSONReader, fallbackStatus: Int) -> VLLMError? {
    switch try? reader.peekKind() {
    case .string:
      let message = (try? reader.readString()) ?? ""
      return VLLMError(kind: .upstream, httpStatus: fallbackStatus, message: message)
    case .object:
      var error = VLLMError(kind: .upstream, httpStatus: fallbackStatus, message: "")
      guard (try? reader.beginObject()) != nil else { return nil }
      while let key = try? reader.nextKey() {
        let kind = try? reader.peekKind()
        switch (String(decoding: key, as: UTF8.self), kind) {
        case ("message", .string): error.message = (try? reader.readString()) ?? ""
        case ("type", .string): error.type = try? reader.readString()
        case ("param", .string): error.param = try? reader.readString()
        case ("code", .number):
          if let code = try? reader.readInt64(), (100...599).contains(code) { error.httpStatus = Int(code) }
        default: _ = try? reader.skipValue()
        }
      }
      return error
    default:
      _ = try? reader.skipValue()
      return nil
    }
  }
}
