import Foundation

/// `POST /admin/health {"healthy": false}`: makes /health fail (503) while generations go on, as a
/// vLLM whose engine is going bad answers, so tests can watch a fleet mark it down mid-stream.
enum AdminHealth {
  static func healthy(from body: [UInt8]) -> Bool? {
    guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else { return nil }
    return object["healthy"] as? Bool
  }
}
