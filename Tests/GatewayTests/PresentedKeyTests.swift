import GRPCServer
import Testing

@testable import Gateway

/// The client key a call presents, read in place from its headers: the bearer scheme in any
/// case, the spaces around the key dropped, and `x-api-key` when there is no bearer key.
@Suite struct PresentedKeyTests {
  private func presented(_ pairs: [(String, String)]) -> String? {
    ClientKeys.presentedKey(Metadata(pairs)).map { String(decoding: $0.bytes, as: UTF8.self) }
  }

  @Test func bearerKeyInAnyCaseWithoutItsSpaces() {
    #expect(presented([("authorization", "Bearer sk-one")]) == "sk-one")
    #expect(presented([("authorization", "bEaReR   sk-two  ")]) == "sk-two")
    #expect(presented([("user-agent", "grpc-python"), ("authorization", "bearer sk-three")]) == "sk-three")
  }

  @Test func apiKeyWhenThereIsNoBearerKey() {
    #expect(presented([("x-api-key", " sk-four ")]) == "sk-four")
    #expect(presented([("authorization", "Basic dXNlcg=="), ("x-api-key", "sk-five")]) == "sk-five")
    #expect(presented([("authorization", "Bearer    "), ("x-api-key", "sk-six")]) == "sk-six")
  }

  @Test func noKeyAtAll() {
    #expect(presented([]) == nil)
    #expect(presented([("authorization", "Bearer")]) == nil)
    #expect(presented([("authorization", "Bearer ")]) == nil)
    #expect(presented([("x-api-key", "   ")]) == nil)
    #expect(presented([("x-api-keys", "sk-seven")]) == nil)
  }

  @Test func comparedWholeAndByLength() {
    let key = ClientKeys.presentedKey(Metadata([("authorization", "Bearer sk-eight")]))!
    #expect(key.equals(Array("sk-eight".utf8)))
    #expect(!key.equals(Array("sk-eigh".utf8)))
    #expect(!key.equals(Array("sk-eighT".utf8)))
    #expect(!key.equals(Array("sk-eight!".utf8)))
  }
}
