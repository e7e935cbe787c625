import Testing

@testable import GRPCServer

@Suite struct RepeatedHeaderValuesTests {
  private func string(_ values: inout RepeatedHeaderValues, _ bytes: [UInt8]) -> String {
    bytes.withUnsafeBytes { values.string($0) }
  }

  /// Where a String's bytes live: the same place for two Strings sharing one storage.
  private func storage(_ text: String) -> UnsafeRawPointer? {
    text.utf8.withContiguousStorageIfAvailable { UnsafeRawPointer($0.baseAddress) } ?? nil
  }

  @Test func aRepeatedValueSharesTheFirstCallsString() {
    var values = RepeatedHeaderValues()
    let agent = Array("grpc-python/1.76.0 grpc-c/51.0.0 (linux; chttp2)".utf8)
    let first = string(&values, agent)
    let second = string(&values, agent)
    #expect(first == "grpc-python/1.76.0 grpc-c/51.0.0 (linux; chttp2)" && second == first)
    #expect(storage(first) != nil && storage(first) == storage(second))
  }

  @Test func valuesOfTheSameLengthDifferingInOneByteStayApart() {
    var values = RepeatedHeaderValues()
    let one = string(&values, Array("request-00000000000001".utf8))
    let two = string(&values, Array("request-00000000000002".utf8))
    #expect(one == "request-00000000000001" && two == "request-00000000000002")
    #expect(string(&values, Array("request-00000000000001".utf8)) == "request-00000000000001")
    #expect(string(&values, Array("request-00000000000002".utf8)) == "request-00000000000002")
  }

  @Test func theOldestOfMoreThanFourIsForgottenAndEveryValueStaysRight() {
    var values = RepeatedHeaderValues()
    let texts = (0..<7).map { "a value numbered \($0) of seven" }
    var strings: [String] = []
    for text in texts { strings.append(string(&values, Array(text.utf8))) }
    // The last four are kept; the first was replaced.
    for index in 3..<7 { #expect(storage(string(&values, Array(texts[index].utf8))) == storage(strings[index])) }
    let again = string(&values, Array(texts[0].utf8))
    #expect(again == texts[0] && storage(again) != storage(strings[0]))
  }

  @Test func shortValuesAreKeptAndComeBackRight() {
    var values = RepeatedHeaderValues()
    #expect(string(&values, Array("*/*".utf8)) == "*/*")
    #expect(string(&values, Array("gzip, deflate".utf8)) == "gzip, deflate")
    #expect(values.keptCount == 2)
    // Kept ones are found again, and a same-length value that differs is not mistaken for one.
    #expect(string(&values, Array("*/*".utf8)) == "*/*")
    #expect(string(&values, Array("*/+".utf8)) == "*/+")
    #expect(string(&values, Array("gzip, deflate".utf8)) == "gzip, deflate")
    #expect(values.keptCount == 3)
    #expect(string(&values, []) == "")
  }

  @Test func longValuesAreMadeEachTimeAndNotKept() {
    var values = RepeatedHeaderValues()
    let long = String(repeating: "x", count: RepeatedHeaderValues.longest + 1)
    let first = string(&values, Array(long.utf8))
    let second = string(&values, Array(long.utf8))
    #expect(first == long && second == long && storage(first) != storage(second))
    #expect(values.keptCount == 0)
  }

  @Test func invalidUTF8IsRepairedAndNeverMistakenForAKeptValue() {
    var values = RepeatedHeaderValues()
    let invalid: [UInt8] = Array("agent with a bad byte: ".utf8) + [0xFF]
    let repaired = string(&values, invalid)
    #expect(repaired == "agent with a bad byte: \u{FFFD}")
    // The repaired String's own bytes are a different value, and come back as themselves.
    #expect(string(&values, Array(repaired.utf8)) == repaired)
    #expect(string(&values, invalid) == repaired)
  }
}
