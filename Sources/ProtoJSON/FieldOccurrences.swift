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
    guard start < indices.count, indices[start] == index else { return grouped[start..<start] }
    return grouped[start..<groupEnd(from: start)]
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

  /// Where the group of occurrences that starts at `start` (all of one field's) ends.
  @inline(__always)
  private func groupEnd(from start: Int) -> Int {
    let index = indices[start]
    var end = start + 1
    while end < indices.count && indices[end] == index { end += 1 }
    return end
  }

  /// One field that occurs: its index in the message's fields and where its occurrences are.
  /// Plain integers, so walking the groups costs no reference counting: an iterator of
  /// (index, slice) tuples was handled by the runtime's generic tuple code (about 300
  /// instructions a unary call).
  struct Group {
    let fieldIndex: Int
    fileprivate let positions: Range<Int>
  }

  /// The fields that occur, in schema order: what writing a message goes through, rather than
  /// asking each of its fields in turn.
  var groups: Groups { Groups(occurrences: self) }

  struct Groups: Sequence, IteratorProtocol {
    fileprivate let occurrences: FieldOccurrences
    private var start = 0

    fileprivate init(occurrences: FieldOccurrences) {
      self.occurrences = occurrences
    }

    @inline(__always)
    mutating func next() -> Group? {
      guard start < occurrences.indices.count else { return nil }
      let end = occurrences.groupEnd(from: start)
      defer { start = end }
      return Group(fieldIndex: occurrences.indices[start], positions: start..<end)
    }
  }

  @inline(__always)
  subscript(group: Group) -> ArraySlice<WireField> { grouped[group.positions] }
}
