import Testing

@testable import ProtoJSON

@Suite struct JSONReaderNumberTests {
  /// The integer fast path and the general number reader must agree wherever both apply, and
  /// the fast path must leave everything else untouched for the general one.
  @Test(arguments: [
    ("0", Int64(0)), ("-0", 0), ("7", 7), ("1795574578", 1_795_574_578), ("-42", -42),
    ("99999999999999999", 99_999_999_999_999_999),
  ])
  func plainIntegers(_ text: String, _ expected: Int64) throws {
    var reader = JSONReader(Array((text + ",").utf8))
    #expect(reader.readPlainInteger() == expected)
    var general = JSONReader(Array(text.utf8))
    #expect(try general.readInt64() == expected)
  }

  @Test(arguments: ["1.5", "1e3", "2E1", "007", "-", "", "x", "9223372036854775807", "123456789012345678"])
  func otherNumbersAreLeftToTheGeneralReader(_ text: String) {
    var reader = JSONReader(Array(text.utf8))
    #expect(reader.readPlainInteger() == nil)
    #expect(reader.index == 0)
  }

  @Test func integersOfAnyFormStillTranslate() throws {
    var reader = JSONReader(Array("9223372036854775807".utf8))
    #expect(try reader.readInt64() == Int64.max)
    var scientific = JSONReader(Array("1e3".utf8))
    #expect(try scientific.readInt64() == 1000)
  }
}
