/// A message's fields as they occur on the wire, grouped by field in schema order and in wire
/// order within each: one pass over the bytes and two arrays as long as the fields that occur.
/// A request sets a few of its message's dozens of fields, and serializers write them in order,
/// so the occurrences are usually grouped as read; only otherwise are they sorted. (A counting
/// sort over all of the message's fields cost two passes over the bytes and work for every field
/// the schema has, about 1,900 instructions a unary chat call; an array per field cost an
/// allocation for every field set.)
struct FieldOccurrences {
  /// The occurrences of the fields the message's schema knows, sorted by field index.
  private let grouped: [WireField]
  /// The field index of each of `grouped`.
  private let indices: [Int]

  init(bytes: [UInt8], range: Range<Int>, of message: MessageSchema) throws(ProtoWireReader.Failure) {
    var fields: [WireField] = []
    var indices: [Int] = []
    // Every field takes two bytes at least; a few set fields are the rule.
    let expected = min(range.count / 2, 16)
    fields.reserveCapacity(expected)
    indices.reserveCapacity(expected)
    var isGrouped = true
    var reader = ProtoWireReader(bytes, range: range)
    while let field = try reader.next() {
      guard let index = message.fieldIndex(number: field.number) else { continue }
      if let last = indices.last, index < last { isGrouped = false }
      fields.append(field)
      indices.append(index)
    }
    if !isGrouped {
      // By field, then by place on the wire: a stable order whatever the sort.
      let order = indices.indices.sorted { (indices[$0], $0) < (indices[$1], $1) }
      fields = order.map { fields[$0] }
      indices = order.map { indices[$0] }
    }
    self.grouped = fields
    self.indices = indices
  }

  /// The occurrences of the field at `index` in the message's fields, in wire order.
  subscript(index: Int) -> ArraySlice<WireField> {
    let start = firstPosition(notBelow: index)
    var end = start
    while end < indices.count && indices[end] == index { end += 1 }
    return grouped[start..<end]
  }

  /// Where the first occurrence of a field at `index` or later is (binary search).
  private func firstPosition(notBelow index: Int) -> Int {
    var low = 0
    var high = indices.count
    while low < high {
      let middle = (low + high) / 2
      if indices[middle] < index { low = middle + 1 } else { high = middle }
    }
    return low
  }

  /// The fields that occur are walked in schema order by group, each group a field's
  /// occurrences: `groupEnd(from: 0)` ends the first, which starts at 0, and so on up to `count`.
  /// That is what writing a message goes through, rather than asking each of its fields in turn.
  /// (An iterator of (index, slice) tuples was handled by the runtime's generic tuple code.)
  var count: Int { indices.count }

  @inline(__always)
  func fieldIndex(ofGroupAt start: Int) -> Int { indices[start] }

  @inline(__always)
  func groupEnd(from start: Int) -> Int {
    let index = indices[start]
    var end = start + 1
    while end < indices.count && indices[end] == index { end += 1 }
    return end
  }

  @inline(__always)
  func occurrences(_ group: Range<Int>) -> ArraySlice<WireField> { grouped[group] }
}
