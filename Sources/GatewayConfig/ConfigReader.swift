/// Reads one object of a configuration tree, by key, with the path of every value for errors, and
/// refuses keys nobody asked for: a misspelt key is an error, not a silently ignored setting.
struct ConfigReader {
  let path: String
  private let members: [(String, ConfigNode)]
  private var used: Set<String> = []
  /// Keys that may be present and mean nothing to the gateway (another product's fields).
  private let ignorable: Set<String>

  init(_ node: ConfigNode, path: String, ignoring ignorable: Set<String> = []) throws(ConfigError) {
    guard case .object(let members) = node else { throw ConfigError(path: path, reason: "must be an object") }
    self.path = path
    self.members = members
    self.ignorable = ignorable
  }

  func has(_ key: String) -> Bool { members.contains { $0.0 == key } }

  mutating func node(_ key: String) -> ConfigNode? {
    guard let member = members.first(where: { $0.0 == key }) else { return nil }
    used.insert(key)
    if case .null = member.1 { return nil }
    return member.1
  }

  func path(_ key: String) -> String { "\(path).\(key)" }

  mutating func string(_ key: String) throws(ConfigError) -> String? {
    guard let node = node(key) else { return nil }
    guard case .string(let value) = node else { throw ConfigError(path: path(key), reason: "must be a string") }
    return value
  }

  mutating func number(_ key: String, minimum: Double? = nil, maximum: Double? = nil) throws(ConfigError) -> Double? {
    guard let node = node(key) else { return nil }
    guard case .number(let value) = node, value.isFinite else {
      throw ConfigError(path: path(key), reason: "must be a number")
    }
    if let minimum, value < minimum {
      throw ConfigError(
        path: path(key), reason: "must be at least \(minimum.formattedForConfig), not \(value.formattedForConfig)")
    }
    if let maximum, value > maximum {
      throw ConfigError(
        path: path(key), reason: "must be at most \(maximum.formattedForConfig), not \(value.formattedForConfig)")
    }
    return value
  }

  /// The most seconds a duration may say (about 31 years): a duration is kept in nanoseconds,
  /// and a larger one overflowed their 64 bits, which traps (ends the process, on a reload too).
  static let mostSeconds = 1e9

  /// The same for durations given in milliseconds.
  static let mostMilliseconds = 1_000_000_000_000

  /// A duration in seconds, at least `minimum` and at most `mostSeconds`.
  mutating func seconds(_ key: String, minimum: Double) throws(ConfigError) -> Double? {
    try number(key, minimum: minimum, maximum: Self.mostSeconds)
  }

  mutating func bool(_ key: String) throws(ConfigError) -> Bool? {
    guard let node = node(key) else { return nil }
    guard case .bool(let value) = node else { throw ConfigError(path: path(key), reason: "must be true or false") }
    return value
  }

  mutating func integer(_ key: String, minimum: Int? = nil, maximum: Int? = nil) throws(ConfigError) -> Int? {
    guard let value = try number(key, minimum: minimum.map(Double.init), maximum: maximum.map(Double.init)) else {
      return nil
    }
    guard value == value.rounded(), abs(value) < 1e15 else {
      throw ConfigError(path: path(key), reason: "must be a whole number")
    }
    return Int(value)
  }

  mutating func strings(_ key: String) throws(ConfigError) -> [String]? {
    guard let node = node(key) else { return nil }
    guard case .array(let elements) = node else {
      throw ConfigError(path: path(key), reason: "must be a list of strings")
    }
    var strings: [String] = []
    for (index, element) in elements.enumerated() {
      guard case .string(let value) = element else {
        throw ConfigError(path: "\(path(key))[\(index)]", reason: "must be a string")
      }
      strings.append(value)
    }
    return strings
  }

  mutating func stringMap(_ key: String) throws(ConfigError) -> [(String, String)]? {
    guard let node = node(key) else { return nil }
    var reader = try ConfigReader(node, path: path(key))
    var pairs: [(String, String)] = []
    for (name, _) in reader.members {
      guard let value = try reader.string(name) else { continue }
      pairs.append((name, value))
    }
    return pairs
  }

  mutating func object(_ key: String, ignoring: Set<String> = []) throws(ConfigError) -> ConfigReader? {
    guard let node = node(key) else { return nil }
    return try ConfigReader(node, path: path(key), ignoring: ignoring)
  }

  mutating func objects(_ key: String, ignoring: Set<String> = []) throws(ConfigError) -> [ConfigReader]? {
    guard let node = node(key) else { return nil }
    guard case .array(let elements) = node else { throw ConfigError(path: path(key), reason: "must be a list") }
    var readers: [ConfigReader] = []
    for (index, element) in elements.enumerated() {
      readers.append(try ConfigReader(element, path: "\(path(key))[\(index)]", ignoring: ignoring))
    }
    return readers
  }

  /// Each member, for maps keyed by name.
  var keys: [String] { members.map(\.0) }

  /// Refuses any key not read.
  func finish() throws(ConfigError) {
    for (key, _) in members where !used.contains(key) && !ignorable.contains(key) {
      throw ConfigError(path: path(key), reason: "unknown key")
    }
  }
}

extension Double {
  var formattedForConfig: String { self == rounded() && abs(self) < 1e15 ? String(Int(self)) : String(self) }
}
