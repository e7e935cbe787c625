import Crypto
import Foundation
import Gateway

/// One entry of `auth.keys`: the key as its SHA-256 (`sha256`, hex), or in plain from the
/// environment or a file (`key: env.NAME`, `key_file: /run/secrets/...`, as Kubernetes secrets
/// and Vault agents provide them), which is hashed at once and never kept.
enum ClientKeyReader {
  static func read(_ reader: inout ConfigReader, environment: [String: String]) throws(ConfigError) -> ClientKeyRule {
    guard let id = try reader.string("id"), !id.isEmpty else {
      throw ConfigError(path: reader.path, reason: "a key needs an id (its name in logs and metrics)")
    }
    var digests: [[UInt8]] = []
    if let hex = try reader.string("sha256") {
      guard let digest = Self.bytes(hex: hex), digest.count == 32 else {
        throw ConfigError(path: reader.path("sha256"), reason: "must be 64 hexadecimal digits")
      }
      digests.append(digest)
    }
    if let written = try reader.string("key") {
      let key = try GatewayConfiguration.resolve(written, environment, path: reader.path("key"))
      guard !key.isEmpty else { throw ConfigError(path: reader.path("key"), reason: "is empty") }
      digests.append(Array(SHA256.hash(data: Array(key.utf8))))
    }
    if let file = try reader.string("key_file") {
      guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
        throw ConfigError(path: reader.path("key_file"), reason: "cannot read \(file)")
      }
      let key = text.trimmingCharacters(in: .whitespacesAndNewlines)
      guard !key.isEmpty else { throw ConfigError(path: reader.path("key_file"), reason: "\(file) is empty") }
      digests.append(Array(SHA256.hash(data: Array(key.utf8))))
    }
    let commonName = try reader.string("client_certificate_cn")
    guard digests.count + (commonName == nil ? 0 : 1) == 1 else {
      throw ConfigError(
        path: reader.path, reason: "give exactly one of sha256, key, key_file and client_certificate_cn")
    }
    return ClientKeyRule(
      id: id, sha256: digests.first, certificateCommonName: commonName, models: try reader.strings("models"),
      requestsPerMinute: try reader.number("requests_per_minute", minimum: 0.001, maximum: 1e12),
      tokensPerMinute: try reader.number("tokens_per_minute", minimum: 1, maximum: 1e15),
      maxConcurrentStreams: try reader.integer("max_concurrent_streams", minimum: 1))
  }

  static func bytes(hex: String) -> [UInt8]? {
    let digits = Array(hex.lowercased().utf8)
    guard digits.count % 2 == 0 else { return nil }
    var bytes: [UInt8] = []
    var index = 0
    while index < digits.count {
      guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
      bytes.append(high << 4 | low)
      index += 2
    }
    return bytes
  }

  private static func value(_ digit: UInt8) -> UInt8? {
    switch digit {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
    default: nil
    }
  }
}
