/// google.protobuf.Timestamp as canonical JSON: an RFC 3339 string in UTC ("Z"), with 0, 3, 6
/// or 9 fractional digits, between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999999Z.
enum TimestampJSON {
  static let minimumSeconds: Int64 = -62_135_596_800
  static let maximumSeconds: Int64 = 253_402_300_799

  /// Nil when the timestamp is outside the range JSON can spell.
  static func format(seconds: Int64, nanos: Int32) -> String? {
    guard (minimumSeconds...maximumSeconds).contains(seconds), (0..<1_000_000_000).contains(nanos) else { return nil }
    let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
    let secondOfDay = seconds - days * 86_400
    let (year, month, day) = civil(fromDays: days)
    var text = pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2) + "T"
    text += pad(secondOfDay / 3600, 2) + ":" + pad(secondOfDay / 60 % 60, 2) + ":" + pad(secondOfDay % 60, 2)
    return text + fraction(nanos) + "Z"
  }

  /// RFC 3339 with any offset ("Z", "+01:00"), as protobuf's parsers accept; nil when malformed
  /// or out of range.
  static func parse(_ text: [UInt8]) -> (seconds: Int64, nanos: Int32)? {
    var scanner = DigitScanner(text)
    guard let year = scanner.digits(4), scanner.skip("-"), let month = scanner.digits(2), scanner.skip("-"),
      let day = scanner.digits(2), scanner.skip("T"), let hour = scanner.digits(2), scanner.skip(":"),
      let minute = scanner.digits(2), scanner.skip(":"), let second = scanner.digits(2)
    else { return nil }
    guard (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year), hour < 24, minute < 60,
      second < 60
    else { return nil }
    var nanos: Int64 = 0
    if scanner.skip(".") {
      guard let fraction = scanner.fraction() else { return nil }
      nanos = fraction
    }
    var offset: Int64 = 0
    if scanner.skip("Z") {
      offset = 0
    } else {
      let sign: Int64
      if scanner.skip("+") {
        sign = 1
      } else if scanner.skip("-") {
        sign = -1
      } else {
        return nil
      }
      guard let offsetHours = scanner.digits(2), scanner.skip(":"), let offsetMinutes = scanner.digits(2),
        offsetHours < 24, offsetMinutes < 60
      else { return nil }
      offset = sign * (offsetHours * 3600 + offsetMinutes * 60)
    }
    guard scanner.isAtEnd else { return nil }
    let seconds = days(fromCivil: year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset
    guard (minimumSeconds...maximumSeconds).contains(seconds) else { return nil }
    return (seconds, Int32(nanos))
  }

  /// ".123", ".123456" or ".123456789": the fewest digits of those three that hold the nanos.
  static func fraction(_ nanos: Int32) -> String {
    if nanos == 0 { return "" }
    if nanos % 1_000_000 == 0 { return "." + pad(Int64(nanos / 1_000_000), 3) }
    if nanos % 1000 == 0 { return "." + pad(Int64(nanos / 1000), 6) }
    return "." + pad(Int64(nanos), 9)
  }

  static func pad(_ value: Int64, _ width: Int) -> String {
    let digits = String(value)
    return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
  }

  private static func daysIn(month: Int64, year: Int64) -> Int64 {
    switch month {
    case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
    case 4, 6, 9, 11: return 30
    default: return 31
    }
  }

  // Days since 1970-01-01 and back, in the proleptic Gregorian calendar (Howard Hinnant's
  // algorithms: exact over the whole range without tables or Foundation).

  private static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400
    let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    return era * 146_097 + dayOfEra - 719_468
  }

  private static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let dayOfEra = z - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let monthIndex = (5 * dayOfYear + 2) / 153
    let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
    let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
    return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
  }
}
