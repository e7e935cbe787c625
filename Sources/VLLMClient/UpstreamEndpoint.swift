/// Where vLLM listens, from a base URL such as `http://vllm:8000` or `http://host:8000/prefix`.
struct UpstreamEndpoint: Sendable {
  var isTLS: Bool
  var host: String
  var port: Int
  /// Prefixed to every request path.
  var basePath: String
  /// The Host header.
  var authority: String

  init?(_ url: String) {
    let rest: Substring
    if url.hasPrefix("http://") {
      isTLS = false
      rest = url.dropFirst(7)
    } else if url.hasPrefix("https://") {
      isTLS = true
      rest = url.dropFirst(8)
    } else {
      return nil
    }
    let hostPort = rest.prefix { $0 != "/" }
    basePath = String(rest.dropFirst(hostPort.count))
    authority = String(hostPort)
    if hostPort.hasPrefix("["), let close = hostPort.firstIndex(of: "]") {
      host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
      let after = hostPort[hostPort.index(after: close)...]
      port = after.hasPrefix(":") ? Int(after.dropFirst()) ?? -1 : (isTLS ? 443 : 80)
    } else if let colon = hostPort.lastIndex(of: ":") {
      host = String(hostPort[..<colon])
      port = Int(hostPort[hostPort.index(after: colon)...]) ?? -1
    } else {
      host = String(hostPort)
      port = isTLS ? 443 : 80
    }
    guard !host.isEmpty, (1...65535).contains(port) else { return nil }
  }
}
