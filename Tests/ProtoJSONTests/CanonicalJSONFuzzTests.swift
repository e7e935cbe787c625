import Testing

@testable import ProtoJSON

/// Truncated and mutated inputs, both ways: each must give JSON or wire bytes or a
/// ProtoJSONError, never a crash. Deterministic, so a failure replays; tools/fuzz covers the
/// unbounded search.
@Suite struct CanonicalJSONFuzzTests {
  /// A fixed xorshift generator: the same mutations on every run.
  struct Generator {
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15

    mutating func next(_ bound: Int) -> Int {
      state ^= state << 13
      state ^= state >> 7
      state ^= state << 17
      return Int(state % UInt64(bound))
    }
  }

  /// Bytes that matter to the JSON grammar and to protobuf's wire format.
  static let interesting: [UInt8] =
    Array(#"{}[]",:\-0123456789.eEtfnul "#.utf8) + [0x00, 0x80, 0xFF, 0x7F, 0x08, 0x0A, 0x12]

  static func mutations(of input: [UInt8], count: Int, generator: inout Generator) -> [[UInt8]] {
    var results: [[UInt8]] = (0...input.count).map { Array(input[..<$0]) }
    for _ in 0..<count where !input.isEmpty {
      var mutated = input
      for _ in 0..<(1 + generator.next(3)) {
        let position = generator.next(mutated.count)
        switch generator.next(4) {
        case 0: mutated[position] = interesting[generator.next(interesting.count)]
        case 1: mutated[position] = UInt8(truncatingIfNeeded: generator.next(256))
        case 2: mutated.remove(at: position)
        default: mutated.insert(interesting[generator.next(interesting.count)], at: position)
        }
        if mutated.isEmpty { break }
      }
      results.append(mutated)
    }
    return results
  }

  @Test func mutatedJSONNeverCrashes() {
    var generator = Generator()
    for golden in CanonicalJSONGoldens.printed {
      let codec = CanonicalFixture.codec(for: golden.type)
      for input in Self.mutations(of: Array(golden.json.utf8), count: 200, generator: &generator) {
        // Whatever parses must print again.
        if let wire = try? codec.message(fromJSON: input, type: golden.type) {
          #expect(throws: Never.self) { _ = try? codec.json(fromMessage: wire, type: golden.type) }
        }
      }
    }
  }

  @Test func mutatedWireBytesNeverCrash() {
    var generator = Generator()
    for golden in CanonicalJSONGoldens.printed {
      let codec = CanonicalFixture.codec(for: golden.type)
      for input in Self.mutations(of: CanonicalFixture.bytes(hex: golden.wire), count: 200, generator: &generator) {
        // Whatever prints must be JSON the codec reads back.
        if let json = try? codec.json(fromMessage: input, type: golden.type) {
          #expect(
            (try? codec.message(fromJSON: json, type: golden.type)) != nil, "\(String(decoding: json, as: UTF8.self))")
        }
      }
    }
  }
}
