/// One scalar as the wire holds it, read from JSON before its tag is written: a field without
/// presence writes nothing for its default.
enum WireValue {
  case varint(UInt64)
  case fixed32(UInt32)
  case fixed64(UInt64)
  case bytes([UInt8])

  var isZero: Bool {
    switch self {
    case .varint(let value), .fixed64(let value): value == 0
    case .fixed32(let value): value == 0
    case .bytes(let value): value.isEmpty
    }
  }

  func write(_ number: Int32, to writer: inout ProtoWireWriter) {
    switch self {
    case .varint: writer.tag(number, .varint)
    case .fixed32: writer.tag(number, .fixed32)
    case .fixed64: writer.tag(number, .fixed64)
    case .bytes(let value):
      writer.lengthDelimited(number, value)
      return
    }
    writeBare(to: &writer)
  }

  /// Without a tag, as an element of a packed run.
  func writeBare(to writer: inout ProtoWireWriter) {
    switch self {
    case .varint(let value): writer.varint(value)
    case .fixed32(let value): writer.fixed32(value)
    case .fixed64(let value): writer.fixed64(value)
    case .bytes(let value):
      writer.varint(UInt64(value.count))
      writer.append(value)
    }
  }
}
