/// A message's fields as they occur on the wire, grouped by field and in wire order within each:
/// two passes over the bytes and two arrays, however many fields the message has. (An array per
/// field cost an allocation for every field set, several per request.)
struct FieldOccurrences {
  private let grouped: [WireField]
  /// Where each field's occurrences end in `grouped` (and so where the next field's begin).
  private let ends: [Int]

  init(bytes: [UInt8], range: Range<Int>, of message: MessageSchema) throws(ProtoWireReader.Failure) {
    let fieldCount = message.fields.count
    // Counting sort: count each field's occurrences, turn the counts into start positions, then
    // place each occurrence, which leaves each position at its field's end.
    var positions = [Int].filled(with: 0, count: fieldCount + 1)
    var reader = ProtoWireReader(bytes, range: range)
    var total = 0
    while let field = try reader.next() {
      if let index = message.fieldIndex(number: field.number) {
        positions[index + 1] += 1
        total += 1
      }
    }
    for index in 0..<fieldCount { positions[index + 1] += positions[index] }
    var grouped = [WireField].filled(
      with: WireField(number: 0, wireType: .varint, scalar: 0, range: 0..<0), count: total)
    reader = ProtoWireReader(bytes, range: range)
    while let field = try reader.next() {
      if let index = message.fieldIndex(number: field.number) {
        grouped[positions[index]] = field
        positions[index] += 1
      }
    }
    self.grouped = grouped
    self.ends = positions
  }

  /// Whether the field at `index` occurs at all: a request sets a few of its message's dozens
  /// of fields, and this rules out the rest without making a slice for each.
  @inline(__always)
  func occurs(_ index: Int) -> Bool {
    ends[index] != (index == 0 ? 0 : ends[index - 1])
  }

  /// The occurrences of the field at `index` in the message's fields, in wire order.
  subscript(index: Int) -> ArraySlice<WireField> {
    grouped[(index == 0 ? 0 : ends[index - 1])..<ends[index]]
  }
}
