/// Reads a multipart/form-data body into its fields and files (enough for the audio endpoints).
struct MultipartParser {
  struct Part {
    var name: String
    var filename: String?
    var body: ArraySlice<UInt8>
  }

  static func parts(body: [UInt8], contentType: String) -> [Part]? {
    guard let range = contentType.range(of: "boundary=") else { return nil }
    var boundary = String(contentType[range.upperBound...])
    if let semicolon = boundary.firstIndex(of: ";") { boundary = String(boundary[..<semicolon]) }
    boundary = boundary.trimmingCharacters(in: ["\""])
    let delimiter = Array("--\(boundary)".utf8)
    var parts: [Part] = []
    var searchStart = 0
    guard var current = body.firstRange(of: delimiter, from: searchStart) else { return nil }
    while true {
      let afterDelimiter = current.upperBound
      if body.count >= afterDelimiter + 2 && body[afterDelimiter] == UInt8(ascii: "-")
        && body[afterDelimiter + 1] == UInt8(ascii: "-")
      {
        return parts
      }
      searchStart = afterDelimiter
      guard let next = body.firstRange(of: [0x0D, 0x0A] + delimiter, from: searchStart) else { return parts }
      let partBytes = body[(afterDelimiter + 2)..<next.lowerBound]
      if let headerEnd = partBytes.firstRange(of: [0x0D, 0x0A, 0x0D, 0x0A]) {
        let headers = String(decoding: partBytes[partBytes.startIndex..<headerEnd.lowerBound], as: UTF8.self)
        let content = partBytes[headerEnd.upperBound..<partBytes.endIndex]
        if let name = attribute("name", in: headers) {
          parts.append(Part(name: name, filename: attribute("filename", in: headers), body: content))
        }
      }
      current = (next.lowerBound + 2)..<(next.upperBound)
    }
  }

  private static func attribute(_ name: String, in headers: String) -> String? {
    guard let range = headers.range(of: "; \(name)=\"") else { return nil }
    let rest = headers[range.upperBound...]
    guard let end = rest.firstIndex(of: "\"") else { return nil }
    return String(rest[..<end])
  }
}

extension Array where Element == UInt8 {
  func firstRange(of pattern: [UInt8], from start: Int) -> Range<Int>? {
    guard !pattern.isEmpty, count >= pattern.count else { return nil }
    var index = start
    while index + pattern.count <= count {
      if self[index] == pattern[0] && self[index..<index + pattern.count].elementsEqual(pattern) {
        return index..<index + pattern.count
      }
      index += 1
    }
    return nil
  }
}

extension ArraySlice where Element == UInt8 {
  func firstRange(of pattern: [UInt8]) -> Range<Int>? {
    var index = startIndex
    while index + pattern.count <= endIndex {
      if self[index..<index + pattern.count].elementsEqual(pattern) { return index..<index + pattern.count }
      index += 1
    }
    return nil
  }
}
