import Foundation
import Testing

@testable import Gateway

/// The access log's hand-made timestamps must be exactly what Foundation's ISO 8601 formatting
/// writes, across leap days, century years and the ends of months and years.
@Suite struct UTCTimestampTests {
  @Test func agreesWithFoundationAcrossTheCalendar() {
    let style = Date.ISO8601FormatStyle.iso8601.year().month().day()
      .timeZone(separator: .omitted).time(includingFractionalSeconds: true)
    var milliseconds: Int64 = -2_208_988_800_000  // 1900-01-01
    let step: Int64 = 86_400_000 * 7 + 3_723_123  // a week, an hour, two minutes, three seconds and a bit
    while milliseconds < 7_258_118_400_000 {  // 2200-01-01
      // Foundation cuts fractional seconds off a Double: 0.4 ms more keeps it on the intended
      // millisecond.
      let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000 + 0.0004)
      let expected = "\"" + date.formatted(style) + "\""
      let written = String(decoding: UTCTimestamp.quotedJSON(millisecondsSince1970: milliseconds), as: UTF8.self)
      #expect(written == expected)
      if written != expected { return }
      milliseconds += step
    }
  }

  @Test func leapDaysAndYearEnds() {
    let cases: [(Int64, String)] = [
      (0, "1970-01-01T00:00:00.000Z"),
      (951_782_400_000, "2000-02-29T00:00:00.000Z"),
      (4_107_542_399_999, "2100-02-28T23:59:59.999Z"),
      (1_798_761_599_123, "2026-12-31T23:59:59.123Z"),
      (-1, "1969-12-31T23:59:59.999Z"),
    ]
    for (milliseconds, text) in cases {
      #expect(
        String(decoding: UTCTimestamp.quotedJSON(millisecondsSince1970: milliseconds), as: UTF8.self) == "\"\(text)\"")
    }
  }
}

/// A timestamp set again and again (the access log's): the same text as one made anew, across
/// seconds, back and forth, and before 1970.
@Suite struct ReusedUTCTimestampTests {
  @Test func equalsAFreshTimestampWhateverCameBefore() {
    var reused = UTCTimestamp.Reused()
    let moments: [Int64] = [
      1_798_761_599_123, 1_798_761_599_124, 1_798_761_599_999, 1_798_761_600_000, 1_798_761_599_001,
      1_798_761_600_999, 0, 999, -1, -1000, -1001, -999, 951_782_400_000,
    ]
    for milliseconds in moments {
      reused.set(millisecondsSince1970: milliseconds)
      #expect(reused.quotedJSON == UTCTimestamp.quotedJSON(millisecondsSince1970: milliseconds), "\(milliseconds)")
    }
  }

  /// With a prefix (the access log's line opening), its milliseconds are still rewritten in place.
  @Test func aPrefixGoesBeforeTheSameText() {
    let prefix = Array(#"{"time":"#.utf8)
    var reused = UTCTimestamp.Reused(prefix: prefix)
    for milliseconds: Int64 in [1_798_761_599_123, 1_798_761_599_124, 1_798_761_599_999, 1_798_761_600_000, -1] {
      reused.set(millisecondsSince1970: milliseconds)
      #expect(reused.quotedJSON == prefix + UTCTimestamp.quotedJSON(millisecondsSince1970: milliseconds))
    }
  }
}
