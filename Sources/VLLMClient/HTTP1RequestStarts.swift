import NIOHTTP1

/// The first bytes of the requests one loop sends to one upstream, up to the Content-Length
/// value (method, base path, path, version, Host), kept for each path: a gateway sends a few
/// paths, one per operation, again and again.
struct HTTP1RequestStarts {
  /// Paths kept at most; others are made for each request.
  static let capacity = 16
  private var kept: [(method: HTTPMethod, path: String, bytes: [UInt8])] = []

  init() {}

  mutating func start(_ method: HTTPMethod, _ path: String, template: HTTP1HeadTemplate) -> [UInt8] {
    // Paths first: an operation's path is the same String each call, which `==` sees at once;
    // another path (a health check's) is told apart by its length, where `==` compared its
    // bytes (about 120 instructions). HTTPMethod's `==` compares the methods' names as Strings.
    let length = path.utf8.count
    for index in kept.indices
    where kept[index].path.utf8.count == length && kept[index].path == path && Self.same(kept[index].method, method) {
      return kept[index].bytes
    }
    var bytes: [UInt8] = []
    if case .POST = method {
      bytes.append(contentsOf: "POST ".utf8)
    } else {
      bytes.append(contentsOf: method.rawValue.utf8)
      bytes.append(UInt8(ascii: " "))
    }
    bytes.append(contentsOf: template.basePath)
    bytes.append(contentsOf: path.utf8)
    bytes.append(contentsOf: template.afterTarget)
    if kept.count < Self.capacity { kept.append((method, path, bytes)) }
    return bytes
  }

  private static func same(_ first: HTTPMethod, _ second: HTTPMethod) -> Bool {
    switch (first, second) {
    case (.POST, .POST), (.GET, .GET): true
    default: first == second
    }
  }
}
