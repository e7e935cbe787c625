import Foundation

/// One exchange recorded from a real vLLM (tests/fixtures/vllm-recordings): the request and the
/// raw response.
struct Recording {
  let name: String
  let method: String
  let path: String
  let requestBody: [UInt8]
  let status: Int
  let responseHeaders: [String: String]
  let responseBody: [UInt8]

  static let directory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("tests/fixtures/vllm-recordings")

  static func all() throws -> [Recording] {
    try FileManager.default.contentsOfDirectory(atPath: directory.path)
      .filter { $0.hasSuffix(".http") }
      .sorted()
      .compactMap { try Recording(named: $0) }
  }

  init?(named name: String) throws {
    let data = [UInt8](try Data(contentsOf: Recording.directory.appendingPathComponent(name)))
    let text = String(decoding: data, as: UTF8.self)
    guard let requestStart = text.range(of: "### REQUEST\n"),
      let responseMarker = text.range(of: "\n### RESPONSE")
    else { return nil }
    self.name = name
    let request = String(text[requestStart.upperBound..<responseMarker.lowerBound])
    let requestLine = request.prefix { $0 != "\n" }.split(separator: " ")
    method = requestLine.first.map(String.init) ?? ""
    path = requestLine.count > 1 ? String(requestLine[1]) : ""
    if let blank = request.range(of: "\n\n") {
      requestBody = Array(request[blank.upperBound...].utf8).trimmingTrailingNewlines()
    } else {
      requestBody = []
    }
    // The response part is raw bytes: find it in the byte array, not the decoded text.
    let marker = Array("\n### RESPONSE".utf8)
    guard let markerIndex = data.firstRange(of: marker)?.lowerBound,
      let lineEnd = data[markerIndex + 1..<data.count].firstIndex(of: 0x0A)
    else { return nil }
    let raw = Array(data[(lineEnd + 1)...])
    guard let headerEnd = raw.firstRange(of: Array("\r\n\r\n".utf8)) ?? raw.firstRange(of: Array("\n\n".utf8)) else {
      return nil
    }
    let head = String(decoding: raw[..<headerEnd.lowerBound], as: UTF8.self)
    let lines = head.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }).map {
      $0.trimmingCharacters(in: .whitespaces)
    }
    status = lines.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
    var headers: [String: String] = [:]
    for line in lines.dropFirst() {
      guard let colon = line.firstIndex(of: ":") else { continue }
      headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    responseHeaders = headers
    responseBody = Array(raw[headerEnd.upperBound...])
  }

  var isEventStream: Bool { responseHeaders["content-type"]?.hasPrefix("text/event-stream") ?? false }

  /// The JSON payloads of the stream's `data:` lines, without `[DONE]`.
  var eventData: [[UInt8]] {
    String(decoding: responseBody, as: UTF8.self)
      .split(separator: "\n")
      .filter { $0.hasPrefix("data: ") && $0 != "data: [DONE]" }
      .map { Array($0.dropFirst(6).utf8) }
  }
}

extension Array where Element == UInt8 {
  func trimmingTrailingNewlines() -> [UInt8] {
    var copy = self
    while let last = copy.last, last == 0x0A || last == 0x0D { copy.removeLast() }
    return copy
  }
}
