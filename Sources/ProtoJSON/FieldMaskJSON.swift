/// google.protobuf.FieldMask as canonical JSON: its paths joined by commas, each path's field
/// names in lowerCamelCase ("user.display_name" ↔ "user.displayName").
enum FieldMaskJSON {
  /// Nil for a path that would not come back the same from JSON: one with upper-case letters, or
  /// with a `_` not followed by a lower-case letter.
  static func jsonPath(_ path: [UInt8]) -> String? {
    var out: [UInt8] = []
    out.reserveCapacity(path.count)
    var afterUnderscore = false
    for byte in path {
      if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { return nil }
      if afterUnderscore {
        guard byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z") else { return nil }
        out.append(byte - 32)
        afterUnderscore = false
      } else if byte == UInt8(ascii: "_") {
        afterUnderscore = true
      } else {
        out.append(byte)
      }
    }
    return afterUnderscore ? nil : String(decoding: out, as: UTF8.self)
  }

  /// The proto path for one JSON path; nil when it holds a `_` (JSON paths are camelCase).
  static func protoPath(_ path: ArraySlice<UInt8>) -> [UInt8]? {
    var out: [UInt8] = []
    out.reserveCapacity(path.count + 4)
    for byte in path {
      if byte == UInt8(ascii: "_") { return nil }
      if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") {
        out.append(UInt8(ascii: "_"))
        out.append(byte + 32)
      } else {
        out.append(byte)
      }
    }
    return out
  }
}
