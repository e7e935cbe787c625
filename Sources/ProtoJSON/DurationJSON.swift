/// google.protobuf.Duration as canonical JSON: seconds with 0, 3, 6 or 9 fractional digits and
/// an "s" ("1.5s", "-0.001s"), within ±315,576,000,000 seconds (10,000 years).
enum DurationJSON {
  static let maximumSeconds: Int64 = 315_576_000_000

  /// Nil when out of range, or when seconds and nanos have different signs.
  static func format(seconds: Int64, nanos: Int32) -> String? {
    guard (-maximumSeconds...maximumSeconds).contains(seconds), (-999_999_999...999_999_999).contains(nanos),
      !(seconds > 0 && nanos < 0), !(seconds < 0 && nanos > 0)
    else { return nil }
    let sign = seconds < 0 || nanos < 0 ? "-" : ""
    return sign + String(seconds.magnitude) + TimestampJSON.fraction(Int32(nanos.magnitude)) + "s"
  }

  static func parse(_ text: [UInt8]) -> (seconds: Int64, nanos: Int32)? {
    var scanner = DigitScanner(text)
    let negative = scanner.skip("-")
    guard let seconds = scanner.number() else { return nil }
    var nanos: Int64 = 0
    if scanner.skip(".") {
      guard let fraction = scanner.fraction() else { return nil }
      nanos = fraction
    }
    guard scanner.skip("s"), scanner.isAtEnd, seconds <= maximumSeconds else { return nil }
    return negative ? (-seconds, Int32(-nanos)) : (seconds, Int32(nanos))
  }
}
