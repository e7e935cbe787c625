import NIOCore

/// The `grpc-timeout` header: at most eight ASCII digits followed by a unit, `H`, `M`, `S`, `m`
/// (milliseconds), `u` (microseconds) or `n` (nanoseconds).
public struct Timeout: Sendable, Hashable {
  public let duration: TimeAmount

  public init(_ duration: TimeAmount) {
    self.duration = duration
  }

  /// Parses a header value; nil when it is not a valid `grpc-timeout`.
  public init?(header: some StringProtocol) {
    let utf8 = Array(header.utf8)
    guard utf8.count >= 2, utf8.count <= 9, let unit = utf8.last else { return nil }
    var amount: Int64 = 0
    for digit in utf8.dropLast() {
      guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
      amount = amount * 10 + Int64(digit - UInt8(ascii: "0"))
    }
    // Eight digits of hours overflow nanoseconds in an Int64; clamp to a very distant deadline.
    let maximumNanoseconds = Int64.max / 2
    func scaled(_ nanosecondsPerUnit: Int64) -> TimeAmount {
      let (product, overflow) = amount.multipliedReportingOverflow(by: nanosecondsPerUnit)
      return .nanoseconds(overflow || product > maximumNanoseconds ? maximumNanoseconds : product)
    }
    switch unit {
    case UInt8(ascii: "H"): duration = scaled(3_600_000_000_000)
    case UInt8(ascii: "M"): duration = scaled(60_000_000_000)
    case UInt8(ascii: "S"): duration = scaled(1_000_000_000)
    case UInt8(ascii: "m"): duration = scaled(1_000_000)
    case UInt8(ascii: "u"): duration = scaled(1_000)
    case UInt8(ascii: "n"): duration = scaled(1)
    default: return nil
    }
  }
}
