import NIOPosix
import VLLMClient

@testable import Fleet

/// Upstreams for policy tests; their client is never called. One client for all: AsyncHTTPClient
/// insists on a shutdown before it goes, and a static never goes.
enum TestUpstreams {
  static let client = VLLMClient(
    baseURL: "http://127.0.0.1:9", apiKey: nil, eventLoopGroup: MultiThreadedEventLoopGroup.singleton)

  static func make(_ count: Int, weights: [Double]? = nil, models: [String]? = ["m"]) -> [Upstream] {
    (0..<count).map { index in
      Upstream(id: index, name: "u\(index)", client: client, weight: weights?[index] ?? 1, models: models)
    }
  }
}

extension Upstream {
  func setLoad(_ calls: Int) {
    outstanding.store(calls, ordering: .relaxed)
  }
}
