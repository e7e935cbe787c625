import NIOCore
import Testing

@testable import GRPCServer

@Suite struct TimeoutTests {
  @Test(arguments: [
    ("1H", TimeAmount.hours(1)), ("2M", .minutes(2)), ("3S", .seconds(3)), ("40m", .milliseconds(40)),
    ("500u", .microseconds(500)), ("7n", .nanoseconds(7)), ("99999999S", .seconds(99_999_999)),
    ("0m", .nanoseconds(0)),
  ])
  func parsesEveryUnit(header: String, expected: TimeAmount) {
    #expect(Timeout(header: header)?.duration == expected)
  }

  @Test(arguments: ["", "S", "10", "1s", "-1S", "123456789S", "1.5S", " 1S", "1S "])
  func rejectsMalformedValues(header: String) {
    #expect(Timeout(header: header) == nil)
  }

  @Test func clampsHoursThatOverflowNanoseconds() {
    let duration = Timeout(header: "99999999H")?.duration
    #expect(duration != nil)
    #expect(duration! > .hours(1_000_000))
  }
}
