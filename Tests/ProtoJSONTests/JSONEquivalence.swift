import Foundation

/// Compares two JSON texts as values: key order and number spelling do not matter; nulls and
/// empty arrays in the original (which protobuf cannot tell from absent) may be missing; floats
/// compare with a tolerance for float32 fields; a "type" the round trip adds to an untyped tagged
/// object is allowed; a base64 embedding may come back as the floats it encodes.
enum JSONEquivalence {
  static func difference(original: [UInt8], roundTripped: [UInt8]) -> String? {
    guard let left = try? JSONSerialization.jsonObject(with: Data(original), options: [.fragmentsAllowed]) else {
      return "original does not parse"
    }
    guard let right = try? JSONSerialization.jsonObject(with: Data(roundTripped), options: [.fragmentsAllowed]) else {
      return "round trip does not parse: \(String(decoding: roundTripped, as: UTF8.self))"
    }
    return compare(left, right, path: "$")
  }

  private static func compare(_ left: Any, _ right: Any, path: String) -> String? {
    switch (left, right) {
    case (let left as [String: Any], let right as [String: Any]):
      for (key, value) in left where !(value is NSNull) {
        guard let other = right[key] else {
          if let array = value as? [Any], array.isEmpty { continue }
          return "\(path).\(key) is missing"
        }
        if let problem = compare(value, other, path: "\(path).\(key)") { return problem }
      }
      for key in right.keys where left[key] == nil || left[key] is NSNull {
        if key == "type" && left[key] == nil { continue }
        if left[key] is NSNull && right[key] is NSNull { continue }
        return "\(path).\(key) was added"
      }
      return nil
    case (let left as [Any], let right as [Any]):
      guard left.count == right.count else { return "\(path) has \(right.count) elements, not \(left.count)" }
      for (index, pair) in zip(left, right).enumerated() {
        if pair.0 is NSNull && (pair.1 is NSNull || (pair.1 as? [String: Any])?.isEmpty == true) { continue }
        if let problem = compare(pair.0, pair.1, path: "\(path)[\(index)]") { return problem }
      }
      return nil
    case (let left as NSNumber, let right as NSNumber):
      let a = left.doubleValue
      let b = right.doubleValue
      if a == b || abs(a - b) <= 1e-6 * max(abs(a), abs(b)) { return nil }
      return "\(path): \(left) became \(right)"
    case (let text as String, let floats as [Any]) where path.hasSuffix(".embedding"):
      guard let data = Data(base64Encoded: text), data.count == floats.count * 4 else {
        return "\(path): base64 of \(text.count) characters became \(floats.count) floats"
      }
      let decoded: [Any] = stride(from: 0, to: data.count, by: 4).map { offset in
        let bits = data[offset..<offset + 4].enumerated().reduce(UInt32(0)) {
          $0 | UInt32($1.element) << (8 * $1.offset)
        }
        return NSNumber(value: Double(Float(bitPattern: bits)))
      }
      return compare(decoded, floats, path: path)
    case (let left as String, let right as String):
      // Variant members spell a type's dots as underscores; the protobuf side keeps the member.
      if path.hasSuffix(".type") && left.replacingOccurrences(of: ".", with: "_") == right { return nil }
      return left == right ? nil : "\(path): \"\(left)\" became \"\(right)\""
    default:
      return "\(path): \(left) became \(right)"
    }
  }
}
