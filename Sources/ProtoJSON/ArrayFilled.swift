extension Array {
  /// `Array(repeating:count:)`, made by appending. That initializer allocates through the
  /// standard library's unspecialized code, which looks up the array storage's type metadata in
  /// the runtime's hash table on every call: about 1,100 instructions, five times a unary chat
  /// call in what was then FieldOccurrences (callgrind). Reserving and appending is specialized where it is
  /// called, with the metadata accessor cached.
  @inline(__always)
  static func filled(with value: Element, count: Int) -> [Element] {
    var array: [Element] = []
    array.reserveCapacity(count)
    for _ in 0..<count { array.append(value) }
    return array
  }
}
