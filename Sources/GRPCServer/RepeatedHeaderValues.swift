#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Metadata values a connection's calls repeat (its client's user-agent, its key), kept as the
/// Strings the latest calls got, so that a repeat shares that String's storage instead of
/// allocating and copying its own: every call in flight held its own 64-byte copy of the
/// client's user-agent. Short values (Swift small strings, which allocate nothing) are kept
/// too: comparing their bytes costs less than making a String, whose UTF-8 check took about
/// 160 instructions a value (callgrind, h2load's `accept` and `accept-encoding`).
struct RepeatedHeaderValues {
  /// Longer values are not kept, so a connection never holds more than a few hundred bytes
  /// after its calls end.
  static let longest = 256
  static let capacity = 4
  private var values: [String] = []
  private var nextReplaced = 0

  /// The value as a String: a kept one with the same bytes, else a new one, then kept.
  mutating func string(_ bytes: UnsafeRawBufferPointer) -> String {
    guard bytes.count <= Self.longest, let base = bytes.baseAddress else {
      return String(decoding: bytes, as: UTF8.self)
    }
    for kept in values where kept.utf8.count == bytes.count {
      // Kept values are native Strings (made below), whose bytes are contiguous (a small
      // string's are copied out for the closure).
      let isSame = kept.utf8.withContiguousStorageIfAvailable { memcmp($0.baseAddress!, base, bytes.count) == 0 }
      if isSame == true { return kept }
    }
    // Invalid UTF-8 is repaired on the way in, so such a String's bytes differ from the value's
    // and a later call with the same bytes does not find it: it gets its own, as before.
    let made = String(decoding: bytes, as: UTF8.self)
    if values.count < Self.capacity {
      if values.isEmpty { values.reserveCapacity(Self.capacity) }
      values.append(made)
    } else {
      values[nextReplaced] = made
      nextReplaced = (nextReplaced + 1) % Self.capacity
    }
    return made
  }

  /// How many values are kept (tests).
  var keptCount: Int { values.count }
}
