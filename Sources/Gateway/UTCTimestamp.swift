/// A moment as ISO 8601 UTC text with milliseconds, `2026-12-01T06:12:44.123Z`, computed from the
/// count of milliseconds since 1970. Foundation's ISO 8601 format style took about 2,700
/// instructions a line (callgrind); this takes a few dozen and writes the same text.
enum UTCTimestamp {
  /// The timestamp in JSON string quotes, ready to be written as raw JSON. Digits are stored
  /// into their places of a ready-made array: an append per character, each checking the
  /// array's uniqueness and capacity, cost about 400 instructions a line (callgrind).
  static func quotedJSON(millisecondsSince1970 milliseconds: Int64) -> [UInt8] {
    let (days, millisecondOfDay) = floorDivision(milliseconds, 86_400_000)
    let (year, month, day) = civilDate(daysSince1970: days)
    let secondOfDay = millisecondOfDay / 1000
    var text = Array(#""0000-00-00T00:00:00.000Z""#.utf8)
    setDigits(&text, at: 1, year, width: 4)
    setDigits(&text, at: 6, month, width: 2)
    setDigits(&text, at: 9, day, width: 2)
    setDigits(&text, at: 12, secondOfDay / 3600, width: 2)
    setDigits(&text, at: 15, secondOfDay / 60 % 60, width: 2)
    setDigits(&text, at: 18, secondOfDay % 60, width: 2)
    setDigits(&text, at: 21, millisecondOfDay % 1000, width: 3)
    return text
  }

  /// One timestamp text set to moment after moment: remade when the second changes, else only
  /// its milliseconds rewritten in place (a log's lines mostly fall in the second of the one
  /// before; making the text anew cost about 650 instructions a line, callgrind).
  /// `prefix` goes before the quoted text in the same run (an access log line's opening): one
  /// copy of the two a line, not two.
  struct Reused {
    private(set) var quotedJSON: [UInt8] = []
    private var second = Int64.min
    private let prefix: [UInt8]

    init(prefix: [UInt8] = []) {
      self.prefix = prefix
    }

    mutating func set(millisecondsSince1970 milliseconds: Int64) {
      let (second, millisecond) = floorDivision(milliseconds, 1000)
      guard second == self.second else {
        quotedJSON = prefix + UTCTimestamp.quotedJSON(millisecondsSince1970: milliseconds)
        self.second = second
        return
      }
      setDigits(&quotedJSON, at: prefix.count + 21, millisecond, width: 3)
    }
  }

  /// Year, month and day of the proleptic Gregorian calendar (after Howard Hinnant's
  /// `civil_from_days`, which counts in 400-year eras from March of year 0).
  static func civilDate(daysSince1970: Int64) -> (year: Int64, month: Int64, day: Int64) {
    let days = daysSince1970 + 719_468
    let era = floorDivision(days, 146_097).quotient
    let dayOfEra = days - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let monthFromMarch = (5 * dayOfYear + 2) / 153
    let day = dayOfYear - (153 * monthFromMarch + 2) / 5 + 1
    let month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9
    let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    return (year, month, day)
  }

  private static func floorDivision(_ value: Int64, _ divisor: Int64) -> (quotient: Int64, remainder: Int64) {
    var quotient = value / divisor
    var remainder = value % divisor
    if remainder < 0 {
      quotient -= 1
      remainder += divisor
    }
    return (quotient, remainder)
  }

  /// Exactly `width` (2, 3 or 4) digits of `value`, zero-padded, from `offset` on; constant
  /// divisors keep this to multiplications (years past 9999 are not a log's concern).
  @inline(__always)
  private static func setDigits(_ text: inout [UInt8], at offset: Int, _ value: Int64, width: Int) {
    let zero = UInt8(ascii: "0")
    var place = offset
    if width >= 4 {
      text[place] = zero + UInt8(truncatingIfNeeded: value / 1000 % 10)
      place += 1
    }
    if width >= 3 {
      text[place] = zero + UInt8(truncatingIfNeeded: value / 100 % 10)
      place += 1
    }
    text[place] = zero + UInt8(truncatingIfNeeded: value / 10 % 10)
    text[place + 1] = zero + UInt8(truncatingIfNeeded: value % 10)
  }
}
