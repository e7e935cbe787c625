import Foundation

@testable import ProtoJSON

/// The schema of tests/fixtures/canonical-json/canonical_test.proto: every scalar type, enums,
/// maps, oneofs, optional fields and the well-known types.
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
}
