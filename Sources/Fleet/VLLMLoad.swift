import VLLMClient

/// What vLLM's own Prometheus /metrics says of its load: requests queued (summed over its
/// models) and how full its KV cache is (the highest over its models). Read off the request path
/// by the health checker.
package struct VLLMLoad: Sendable, Equatable {
  package static let mostWaiting = 1_000_000_000

  package var waiting: Int
  package var kvCacheUsage: Double

  init(waiting: Int, kvCacheUsage: Double) {
    self.waiting = waiting
    self.kvCacheUsage = kvCacheUsage
  }

  /// The two gauges' names, whole: `vllm:num_requests_waiting_by_reason` (vLLM 0.11 and later)
  /// starts with the first, and its samples were added to the queue, counting it twice.
  private static let waitingName = Array("vllm:num_requests_waiting".utf8)
  private static let usageName = Array("vllm:kv_cache_usage_perc".utf8)

  /// Nil when the text has neither gauge (not vLLM, or metrics off). Read in place, a line at a
  /// time: a vLLM's page is about 65 KB of some 900 lines, each checks at most its first bytes,
  /// and only the gauges' values become numbers (splitting the page into lines first made an
  /// array of them, every few seconds for each upstream).
  package init?(prometheusText text: [UInt8]) {
    var waiting = 0.0
    var usage = 0.0
    var found = false
    let bytes = text.span
    var lineStart = 0
    while lineStart < bytes.count {
      let lineEnd = bytes.firstIndex(of: UInt8(ascii: "\n"), in: lineStart..<bytes.count) ?? bytes.count
      let line = lineStart..<lineEnd
      lineStart = lineEnd + 1
      // Comments (# HELP, # TYPE) and other metrics go by on their first bytes.
      guard line.count > Self.usageName.count, bytes[line.lowerBound] == UInt8(ascii: "v") else { continue }
      let isWaiting = Self.sample(bytes, line, named: Self.waitingName)
      guard isWaiting || Self.sample(bytes, line, named: Self.usageName),
        let value = Self.value(text, line, afterName: isWaiting ? Self.waitingName.count : Self.usageName.count)
      else { continue }
      found = true
      if isWaiting { waiting += value } else { usage = max(usage, value) }
    }
    guard found else { return nil }
    // Held to what a vLLM can report: a queue past a billion or a cache fuller than full is a
    // broken exporter, and converting or summing it unchecked would trap (end the process).
    self.waiting = Int(min(max(waiting, 0), Double(Self.mostWaiting)))
    self.kvCacheUsage = min(max(usage, 0), 1)
  }

  /// Whether `line` is a sample of the metric `name`: the name, then its labels or its value.
  private static func sample(_ bytes: Span<UInt8>, _ line: Range<Int>, named name: [UInt8]) -> Bool {
    guard line.count > name.count else { return false }
    for offset in name.indices where bytes[line.lowerBound + offset] != name[offset] { return false }
    let next = bytes[line.lowerBound + name.count]
    return next == UInt8(ascii: "{") || next == UInt8(ascii: " ")
  }

  /// A sample's finite value: the text after its labels (`{...}`, whose quoted values may hold
  /// spaces and braces) up to a space (a timestamp may follow) or the line's end.
  private static func value(_ text: [UInt8], _ line: Range<Int>, afterName nameLength: Int) -> Double? {
    let bytes = text.span
    var index = line.lowerBound + nameLength
    if bytes[index] == UInt8(ascii: "{") {
      var quoted = false
      index += 1
      while index < line.upperBound {
        let byte = bytes[index]
        if quoted && byte == UInt8(ascii: "\\") {
          index += 2
          continue
        }
        if byte == UInt8(ascii: "\"") { quoted.toggle() }
        index += 1
        if !quoted && byte == UInt8(ascii: "}") { break }
      }
    }
    while index < line.upperBound && bytes[index] == UInt8(ascii: " ") { index += 1 }
    var end = index
    while end < line.upperBound && bytes[end] != UInt8(ascii: " ") && bytes[end] != UInt8(ascii: "\r") { end += 1 }
    guard index < end, end - index <= 64,
      let value = Double(String(decoding: text[index..<end], as: UTF8.self)), value.isFinite
    else { return nil }
    return value
  }
}
