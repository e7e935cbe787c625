import Foundation
import Gateway
import ProtoJSON

/// libFuzzer entry point: the first byte picks a VLLMService method (`FuzzedRequestTranslation.methods`),
/// the rest is its serialized request message, which goes through the gateway's translation into
/// what vLLM gets (RequestTranslation: JSON, or the audio endpoints' multipart form). Besides not
/// crashing, the translation must reject a request whose wire format is malformed, and what it
/// produces must be well formed: UTF-8 JSON holding one object, which both the gateway's JSON
/// reader and Foundation (which the rerank and Responses-fallback calls parse it with) read
/// back, or a form whose every part has one well-formed header; and a fleet's routing key read
/// from the JSON the quick way is the one read member by member; and the JSON the request's learnt
/// shape writes (the shape learnt from the inputs before) is the general way's. A check that fails traps, as a
/// crash would. tools/fuzz builds and runs it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  FuzzedRequestTranslation.run(Array(UnsafeBufferPointer(start: data, count: size)))
  return 0
}

enum FuzzedRequestTranslation {
  /// What the selector byte picks (modulo the count). The order is the seeds' format: add at the
  /// end only. `viaChat`: a Responses request as the chat completion an upstream without
  /// /v1/responses gets.
  static let methods: [(name: String, viaChat: Bool)] = [
    ("CreateChatCompletion", false), ("StreamChatCompletion", false), ("CreateCompletion", false),
    ("StreamCompletion", false), ("CreateResponse", false), ("StreamResponse", false), ("CreateResponse", true),
    ("StreamResponse", true), ("CreateEmbedding", false), ("Score", false), ("Rerank", false),
    ("CreateTranscription", false), ("StreamTranscription", false), ("CreateTranslation", false),
    ("StreamTranslation", false),
  ]

  /// Translates one input and checks the result; returns what happened, for the replay's log.
  @discardableResult
  static func run(_ input: [UInt8]) -> String {
    guard let selector = input.first else { return "empty input" }
    let method = methods[Int(selector) % methods.count]
    let label = method.name + (method.viaChat ? " via chat" : "")
    let request = Array(input.dropFirst())
    let body: (bytes: [UInt8], contentType: String)
    do {
      let made = try RequestTranslation.upstreamBody(method: method.name, request: request, viaChat: method.viaChat)
      guard let made else { fail(label, "RequestTranslation does not know the method") }
      body = made
    } catch {
      return "\(label): rejected: \(error)"
    }
    if !wireFormatParses(request) { fail(label, "a request with malformed wire format was translated") }
    // The operation's learnt request shape (RequestTemplate) writes what the general way does.
    // (Via chat, the JSON is rewritten through a dictionary, whose key order varies.)
    if body.contentType == "application/json" && !method.viaChat {
      let general = try? RequestTranslation.upstreamBody(
        method: method.name, request: request, viaChat: false, usesShapes: false)
      if general?.bytes != body.bytes {
        let written = String(decoding: body.bytes, as: UTF8.self)
        let expected = general.map { String(decoding: $0.bytes, as: UTF8.self) } ?? "an error"
        fail(label, "the request's shape wrote \(written), the general way \(expected)")
      }
    }
    if body.contentType == "application/json" {
      checkJSON(body.bytes, label)
      if !RoutingKeyReader.quickReadAgrees(with: body.bytes) {
        fail(label, "the routing key read the quick way is not the key read member by member")
      }
    } else {
      checkForm(body.bytes, contentType: body.contentType, label)
    }
    return "\(label): \(body.bytes.count) bytes out"
  }

  static func fail(_ label: String, _ problem: String) -> Never {
    fatalError("fuzz-request-json: \(label): \(problem)")
  }

  /// Whether the message's top-level fields parse (nested messages are the translation's to read).
  static func wireFormatParses(_ bytes: [UInt8]) -> Bool {
    var reader = ProtoWireReader(bytes)
    do {
      while try reader.next() != nil {}
      return true
    } catch {
      return false
    }
  }

  static func checkJSON(_ json: [UInt8], _ label: String) {
    if !String(decoding: json, as: UTF8.self).utf8.elementsEqual(json) { fail(label, "the JSON is not UTF-8") }
    var reader = JSONReader(json)
    do {
      guard try reader.peekKind() == .object else { fail(label, "the JSON is not an object") }
      try reader.skipValue()
      guard reader.isAtEnd else { fail(label, "text follows the JSON object") }
    } catch {
      fail(label, "the gateway's JSON reader rejects the JSON: \(error)")
    }
    if !((try? JSONSerialization.jsonObject(with: Data(json))) is [String: Any]) {
      fail(label, "Foundation does not read the JSON as an object")
    }
  }

  /// A multipart/form-data body as MultipartForm writes it: parts of `--boundary CRLF`, one
  /// Content-Disposition line (a file's adds its Content-Type), a blank line and the content,
  /// then `--boundary--`. The boundary is random, so content cannot end a part early.
  static func checkForm(_ body: [UInt8], contentType: String, _ label: String) {
    guard let boundary = contentType.components(separatedBy: "; boundary=").last, !boundary.isEmpty else {
      fail(label, "no boundary in \(contentType)")
    }
    let delimiter = Array("--\(boundary)".utf8)
    let crlf: [UInt8] = [0x0D, 0x0A]
    var position = 0
    while true {
      guard body[position...].starts(with: delimiter) else { fail(label, "a form part does not start at a boundary") }
      position += delimiter.count
      if body[position...].elementsEqual(Array("--".utf8) + crlf) { return }
      guard body[position...].starts(with: crlf),
        let headersEnd = body[(position + 2)...].firstRange(of: crlf + crlf),
        let partEnd = body[headersEnd.upperBound...].firstRange(of: crlf + delimiter)
      else { fail(label, "a form part is cut short") }
      let headers = Array(body[(position + 2)..<headersEnd.lowerBound])
      if !isWellFormed(headers: headers) {
        fail(label, "a form part has malformed headers: \(String(decoding: headers, as: UTF8.self).debugDescription)")
      }
      position = partEnd.lowerBound + 2
    }
  }

  private static func isWellFormed(headers: [UInt8]) -> Bool {
    var lines: [ArraySlice<UInt8>] = []
    var rest = headers[...]
    while let end = rest.firstRange(of: [0x0D, 0x0A]) {
      lines.append(rest[..<end.lowerBound])
      rest = rest[end.upperBound...]
    }
    lines.append(rest)
    // name="…", or name="…"; filename="…" then the file's Content-Type line.
    let prefix = Array("Content-Disposition: form-data; name=\"".utf8)
    let quote = UInt8(ascii: "\"")
    guard lines[0].starts(with: prefix), lines[0].last == quote, lines[0].count > prefix.count else { return false }
    let quoted = lines[0].dropFirst(prefix.count).dropLast()
    if quoted.contains(0x0D) || quoted.contains(0x0A) { return false }
    switch quoted.filter({ $0 == quote }).count {
    case 0:
      return lines.count == 1
    case 2:
      return quoted.firstRange(of: Array("\"; filename=\"".utf8)) != nil && lines.count == 2
        && lines[1].elementsEqual("Content-Type: application/octet-stream".utf8)
    default:
      return false
    }
  }
}
