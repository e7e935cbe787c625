extension ArraySlice<UInt8> {
  /// Whether these bytes are exactly `text`'s: the counts first, then byte by byte. `elementsEqual`
  /// with a `String.UTF8View` took about 280 instructions a key through the generic sequence
  /// machinery (callgrind), and keys are compared on every call.
  @inlinable
  public func equals(_ text: StaticString) -> Bool {
    guard count == text.utf8CodeUnitCount else { return false }
    // A static string's bytes are only reachable through a buffer pointer; it is read in place.
    return text.withUTF8Buffer { textBytes in
      var index = startIndex
      for byte in textBytes {
        if self[index] != byte { return false }
        index += 1
      }
      return true
    }
  }
}
