/// Scalars in canonical proto3 JSON: how numbers are spelled, and how JSON numbers and numeric
/// strings become protobuf integers and floats.
enum CanonicalScalars {
  // MARK: Printing

  /// A finite double's shortest round-tripping text, without a trailing ".0" ("1.5", "3", "1e+20").
  /// NaN and the infinities are strings in canonical JSON; see `special(_:)`.
  static func text(_ value: Double) -> String {
    value == 0 && value.sign == .minus ? "-0.0" : trimmed(value.description)
  }

  /// The same for a float: its own shortest text, so 0.1f prints as 0.1, not 0.10000000149011612.
  static func text(_ value: Float) -> String {
    value == 0 && value.sign == .minus ? "-0.0" : trimmed(value.description)
  }

  /// "NaN", "Infinity" or "-Infinity" for a value JSON has no number for; nil for the rest.
  static func special(_ value: Double) -> String? {
    if value.isNaN { return "NaN" }
    if value.isInfinite { return value < 0 ? "-Infinity" : "Infinity" }
    return nil
  }

  /// Negative zero keeps its ".0": parsers that read "-0" as an integer lose the sign.
  private static func trimmed(_ text: String) -> String {
    text.hasSuffix(".0") ? String(text.dropLast(2)) : text
  }

  // MARK: Parsing

  /// Why a JSON number does not fit an integer field.
  enum IntegerProblem: Error {
    case notAnInteger
    case outOfRange
  }

  /// The smallest and largest value of each integer type, as (negative, magnitude) bounds.
  private static func bounds(_ type: MessageSchema.FieldType) -> (minimumMagnitude: UInt64, maximum: UInt64) {
    switch type {
    case .int32, .sint32, .sfixed32, .enumeration: (1 << 31, UInt64(Int32.max))
    case .uint32, .fixed32: (0, UInt64(UInt32.max))
    case .uint64, .fixed64: (0, UInt64.max)
    default: (1 << 63, UInt64(Int64.max))
    }
  }

  /// A number's text (already checked against JSON's number grammar) as an integer of `type`,
  /// returned as its two's-complement bits. Exponents and fractions are accepted when the value is
  /// integral ("1e3", "2.0"), as protobuf's parsers do.
  static func integer(_ text: ArraySlice<UInt8>, as type: MessageSchema.FieldType) throws(IntegerProblem) -> UInt64 {
    let negative = text.first == UInt8(ascii: "-")
    let digits = negative ? text.dropFirst() : text
    var magnitude: UInt64 = 0
    if digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
      for digit in digits {
        let (times10, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
        let (sum, overflow2) = times10.addingReportingOverflow(UInt64(digit - UInt8(ascii: "0")))
        guard !overflow1 && !overflow2 else { throw .outOfRange }
        magnitude = sum
      }
    } else {
      guard let double = Double(String(decoding: digits, as: UTF8.self)) else { throw .notAnInteger }
      guard double.isFinite else { throw .outOfRange }
      guard double.rounded(.towardZero) == double else { throw .notAnInteger }
      guard double < 18_446_744_073_709_551_616.0 else { throw .outOfRange }
      magnitude = UInt64(double)
    }
    let (minimumMagnitude, maximum) = bounds(type)
    if negative && magnitude != 0 {
      guard magnitude <= minimumMagnitude else { throw .outOfRange }
      return 0 &- magnitude
    }
    guard magnitude <= maximum else { throw .outOfRange }
    return magnitude
  }

  /// Whether `text` is exactly one JSON number (no sign but "-", no spaces): numeric strings must
  /// be spelled as numbers are.
  static func isNumber(_ text: [UInt8]) -> Bool {
    guard let first = text.first,
      first == UInt8(ascii: "-") || (first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9"))
    else {
      return false
    }
    var reader = JSONReader(text)
    guard (try? reader.readNumberText()) != nil else { return false }
    return reader.index == text.count
  }

  /// Standard or URL-safe base64, with or without padding; nil for anything else (protobuf's
  /// parsers accept all four spellings).
  static func base64(_ text: [UInt8]) -> [UInt8]? {
    var dataCount = 0
    var padding = 0
    for byte in text {
      switch byte {
      case UInt8(ascii: "="):
        padding += 1
      case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "/"), UInt8(ascii: "-"),
        UInt8(ascii: "_"):
        // Data after padding.
        guard padding == 0 else { return nil }
        dataCount += 1
      default:
        return nil
      }
    }
    // One character left over holds 6 bits, not a byte; padding, when present, completes a quad.
    guard dataCount % 4 != 1, padding <= 2, padding == 0 || (dataCount + padding) % 4 == 0 else { return nil }
    return Base64Standard.decode(text)
  }
}
