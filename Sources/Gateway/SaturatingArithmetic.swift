extension Int {
  /// `self + other`, held at the largest or smallest Int instead of trapping. Token counts come
  /// from upstreams and limits from clients: an absurd one must not end the process (Swift's
  /// `+` traps on overflow), and a count past 2^63 is as wrong held as wrapped.
  func saturatingAdd(_ other: Int) -> Int {
    let (sum, overflow) = addingReportingOverflow(other)
    return overflow ? (other > 0 ? .max : .min) : sum
  }

  /// `self - other`, held likewise.
  func saturatingSubtract(_ other: Int) -> Int {
    let (difference, overflow) = subtractingReportingOverflow(other)
    return overflow ? (other < 0 ? .max : .min) : difference
  }
}
