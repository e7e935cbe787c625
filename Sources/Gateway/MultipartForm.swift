import ProtoJSON

/// multipart/form-data bodies for vLLM's audio endpoints, built straight from a
/// TranscriptionRequest's protobuf fields: each scalar a form field named as in the .proto, the
/// audio the `file` part, repeated values as `name[]`, and `extra_form_fields` as they are.
struct MultipartForm {
  let boundary = "vllm-grpc-gateway-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
  private(set) var body: [UInt8] = []

  var contentType: String { "multipart/form-data; boundary=\(boundary)" }

  mutating func add(_ name: String, _ value: String) {
    start()
    body += Array("Content-Disposition: form-data; name=\"\(Self.quotable(name))\"\r\n\r\n".utf8)
    body += Array(value.utf8)
    body += [0x0D, 0x0A]
  }

  mutating func addFile(_ name: String, filename: String, bytes: ArraySlice<UInt8>) {
    start()
    let disposition = "form-data; name=\"\(Self.quotable(name))\"; filename=\"\(Self.quotable(filename))\""
    body += Array("Content-Disposition: \(disposition)\r\nContent-Type: application/octet-stream\r\n\r\n".utf8)
    body += bytes
    body += [0x0D, 0x0A]
  }

  mutating func finish() -> [UInt8] {
    body += Array("--\(boundary)--\r\n".utf8)
    return body
  }

  /// A name or filename as it can go between the header's quotes: a quote would end it early and
  /// a line break would start a header (or the content) of the client's choosing. Field names
  /// from `extra_form_fields` and file names come from the client. Replaced byte by byte: a
  /// search by characters passes over a quote that a combining mark follows (one grapheme with
  /// it), and over a CR LF (fuzz-request-json found the first).
  private static func quotable(_ text: String) -> String {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(text.utf8.count)
    for byte in text.utf8 where byte != UInt8(ascii: "\r") && byte != UInt8(ascii: "\n") {
      bytes.append(byte == UInt8(ascii: "\"") ? UInt8(ascii: "_") : byte)
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  private mutating func start() {
    body += Array("--\(boundary)\r\n".utf8)
  }

  /// The form for a TranscriptionRequest. `overrides` replace fields by name (the gateway sets
  /// `stream` and may change `response_format`).
  static func transcription(
    from request: [UInt8], schema: Schema, overrides: [String: String]
  ) throws -> MultipartForm {
    guard let message = schema.message("vllmgateway.v1.TranscriptionRequest") else {
      throw ProtoJSONError("TranscriptionRequest is missing from the schema")
    }
    var form = MultipartForm()
    var file: Range<Int>? = nil
    var filename = "audio"
    var reader = ProtoWireReader(request)
    do {
      while let field = try reader.next() {
        guard let index = message.fieldIndex(number: field.number) else { continue }
        let schemaField = message.fields[index]
        let name = schemaField.name
        switch (name, field.wireType) {
        case ("file", .lengthDelimited):
          file = field.range
        case ("filename", .lengthDelimited):
          filename = String(decoding: request[field.range], as: UTF8.self)
        case ("extra_form_fields", .lengthDelimited):
          var entry = ProtoWireReader(request, range: field.range)
          var key = ""
          var value = ""
          while let part = try entry.next() {
            if part.number == 1 { key = String(decoding: request[part.range], as: UTF8.self) }
            if part.number == 2 { value = String(decoding: request[part.range], as: UTF8.self) }
          }
          if overrides[key] == nil { form.add(key, value) }
        default:
          guard overrides[name] == nil else { continue }
          let formName = schemaField.isRepeated ? name + "[]" : name
          form.add(formName, scalarText(schemaField.type, field, request))
        }
      }
    } catch {
      throw ProtoJSONError("malformed TranscriptionRequest: \(error.reason)")
    }
    for (name, value) in overrides.sorted(by: { $0.key < $1.key }) { form.add(name, value) }
    if let file {
      form.addFile("file", filename: filename, bytes: request[file])
    }
    return form
  }

  private static func scalarText(_ type: MessageSchema.FieldType, _ field: WireField, _ bytes: [UInt8]) -> String {
    switch type {
    case .string: String(decoding: bytes[field.range], as: UTF8.self)
    case .double: String(Double(bitPattern: field.scalar))
    case .float: String(Float(bitPattern: UInt32(truncatingIfNeeded: field.scalar)))
    case .bool: field.scalar != 0 ? "true" : "false"
    case .int32: String(Int32(truncatingIfNeeded: field.scalar))
    default: String(Int64(bitPattern: field.scalar))
    }
  }
}
