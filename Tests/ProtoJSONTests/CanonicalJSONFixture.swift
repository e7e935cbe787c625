import Foundation

@testable import ProtoJSON

/// The canonical JSON tests' schemas: tests/fixtures/canonical-json/canonical_test.proto (every
/// scalar type, enums, maps, oneofs, optional fields and the well-known types), and the
/// gateway's own bundled one.
enum CanonicalFixture {
  static let schema: Schema = {
    let url = URL(fileURLWithPath: #filePath)
      .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("tests/fixtures/canonical-json/canonical_test.pb")
    guard let data = try? Data(contentsOf: url), let schema = Schema(descriptorSet: [UInt8](data)) else {
      fatalError("cannot load \(url.path)")
    }
    return schema
  }()

  static let codec = CanonicalJSON(schema: schema)
  static let bundledCodec = CanonicalJSON(schema: .bundled)

  /// The codec whose schema holds `type`.
  static func codec(for type: String) -> CanonicalJSON {
    type.hasPrefix("vllmgateway.") || type.hasPrefix("grpc.") ? bundledCodec : codec
  }

  static func bytes(hex: String) -> [UInt8] {
    let digits = Array(hex.utf8).filter { !$0.isWhitespace }
    return stride(from: 0, to: digits.count - 1, by: 2).map {
      UInt8(hexDigit(digits[$0]) << 4 | hexDigit(digits[$0 + 1]))
    }
  }

  static func hex(_ bytes: [UInt8]) -> String {
    bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
  }

  /// JSON → wire → JSON with `type`.
  static func print(_ json: String, as type: String) throws -> String {
    let codec = codec(for: type)
    let wire = try codec.message(fromJSON: Array(json.utf8), type: type)
    return String(decoding: try codec.json(fromMessage: wire, type: type), as: UTF8.self)
  }

  /// The error parsing `json` as `type` gives, or nil when it parses.
  static func parseError(_ json: String, as type: String) -> String? {
    do {
      _ = try codec(for: type).message(fromJSON: Array(json.utf8), type: type)
      return nil
    } catch {
      return error.message
    }
  }

  private static func hexDigit(_ byte: UInt8) -> UInt8 {
    byte <= UInt8(ascii: "9") ? byte - UInt8(ascii: "0") : (byte | 0x20) - UInt8(ascii: "a") + 10
  }
}

extension UInt8 {
  fileprivate var isWhitespace: Bool { self == 0x20 || self == 0x0A || self == 0x0D || self == 0x09 }
}
