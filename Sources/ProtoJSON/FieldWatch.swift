/// What `ReplyTemplate.write` notes of the messages it begins.
protocol FieldWatch {
  mutating func messageBegins(_ number: Int32, depth: Int, at index: Int)
}

/// Notes nothing.
struct NoFieldWatch: FieldWatch {
  @inline(__always)
  mutating func messageBegins(_ number: Int32, depth: Int, at index: Int) {}
}

/// Where one top-level message field was written: its tag's index, nil when it was not, or
/// when it was more than once (a reader of one occurrence would miss what the other says).
struct TopLevelFieldWatch: FieldWatch {
  let number: Int32
  private var found: Int? = nil
  private var seen = 0

  init(number: Int32) {
    self.number = number
  }

  var index: Int? { seen == 1 ? found : nil }

  @inline(__always)
  mutating func messageBegins(_ number: Int32, depth: Int, at index: Int) {
    guard number == self.number, depth == 0 else { return }
    seen &+= 1
    found = index
  }

  /// The index as one in the array the span was appended to, from `base` on.
  mutating func moveBy(_ base: Int) {
    found = found.map { $0 &+ base }
  }
}
