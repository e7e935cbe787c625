import Foundation
import ProtoJSON
import Yams

/// A configuration file's tree, whatever its syntax (JSON or YAML), before it is read: values
/// keep where they came from so every error can name its path.
enum ConfigNode: Equatable {
  case object([(String, ConfigNode)])
  case array([ConfigNode])
  case string(String)
  case number(Double)
  case bool(Bool)
  case null

  static func == (lhs: ConfigNode, rhs: ConfigNode) -> Bool {
    switch (lhs, rhs) {
    case (.object(let a), .object(let b)): a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    case (.array(let a), .array(let b)): a == b
    case (.string(let a), .string(let b)): a == b
    case (.number(let a), .number(let b)): a == b
    case (.bool(let a), .bool(let b)): a == b
    case (.null, .null): true
    default: false
    }
  }

  /// Parses `text` as JSON when it starts with `{`, else as YAML (a superset of JSON).
  static func parse(_ text: String) throws(ConfigError) -> ConfigNode {
    let trimmed = text.drop { $0.isWhitespace }
    if trimmed.first == "{" {
      var reader = JSONReader(Array(text.utf8))
      do {
        let node = try json(&reader, path: "$")
        guard reader.isAtEnd else { throw ConfigError(path: "$", reason: "not valid JSON: text after the object") }
        return node
      } catch let error as ConfigError {
        throw error
      } catch {
        throw ConfigError(path: "$", reason: "not valid JSON: \(error)")
      }
    }
    do {
      guard let value = try Yams.load(yaml: text) else { return .object([]) }
      return try yaml(value, path: "$")
    } catch let error as ConfigError {
      throw error
    } catch {
      throw ConfigError(path: "$", reason: "not valid YAML: \(error)")
    }
  }

  private static func json(_ reader: inout JSONReader, path: String) throws -> ConfigNode {
    switch try reader.peekKind() {
    case .object:
      try reader.beginObject()
      var members: [(String, ConfigNode)] = []
      while let key = try reader.nextKey() {
        let name = String(decoding: key, as: UTF8.self)
        guard !members.contains(where: { $0.0 == name }) else {
          throw ConfigError(path: "\(path).\(name)", reason: "given twice")
        }
        members.append((name, try json(&reader, path: "\(path).\(name)")))
      }
      return .object(members)
    case .array:
      try reader.beginArray()
      var elements: [ConfigNode] = []
      while try reader.nextElement() { elements.append(try json(&reader, path: "\(path)[\(elements.count)]")) }
      return .array(elements)
    case .string: return .string(try reader.readString())
    case .number: return .number(try reader.readDouble())
    case .bool: return .bool(try reader.readBool())
    case .null:
      try reader.readNull()
      return .null
    }
  }

  private static func yaml(_ value: Any, path: String) throws(ConfigError) -> ConfigNode {
    switch value {
    case let dictionary as [String: Any]:
      // Yams does not keep key order; sorted keys give stable errors.
      var members: [(String, ConfigNode)] = []
      for key in dictionary.keys.sorted() { members.append((key, try yaml(dictionary[key]!, path: "\(path).\(key)"))) }
      return .object(members)
    case let dictionary as [AnyHashable: Any]:
      var members: [(String, ConfigNode)] = []
      for (key, member) in dictionary {
        guard let key = key.base as? String else { throw ConfigError(path: path, reason: "keys must be strings") }
        members.append((key, try yaml(member, path: "\(path).\(key)")))
      }
      return .object(members.sorted { $0.0 < $1.0 })
    case let array as [Any]:
      var elements: [ConfigNode] = []
      for (index, element) in array.enumerated() { elements.append(try yaml(element, path: "\(path)[\(index)]")) }
      return .array(elements)
    case let string as String: return .string(string)
    case let bool as Bool: return .bool(bool)
    case let int as Int: return .number(Double(int))
    case let double as Double: return .number(double)
    case is NSNull: return .null
    default: throw ConfigError(path: path, reason: "unsupported value \(value)")
    }
  }
}

/// A configuration the gateway refuses: where in the file, and why.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
  /// A JSON path, such as `$.upstreams[1].url`.
  public var path: String
  public var reason: String

  public init(path: String, reason: String) {
    self.path = path
    self.reason = reason
  }

  public var description: String { "\(path): \(reason)" }
}
