/// Protobuf's wire format, read and written directly, without generated types.
public enum WireType: UInt8, Sendable {
  case varint = 0
  case fixed64 = 1
  case lengthDelimited = 2
  case startGroup = 3
  case endGroup = 4
  case fixed32 = 5
}

/// One field occurrence read from the wire.
public struct WireField {
  public var number: Int32
  public var wireType: WireType
  /// The varint, or the fixed32/fixed64 bits.
  public var scalar: UInt64
  /// For length-delimited fields: the bytes' range in the message.
  public var range: Range<Int>
  /// Where the field's tag starts, to order fields of different kinds.
  public var position: Int = 0

  @usableFromInline
  init(number: Int32, wireType: WireType, scalar: UInt64, range: Range<Int>) {
    self.number = number
    self.wireType = wireType
    self.scalar = scalar
    self.range = range
  }
}

/// Reads the fields of one serialized message in order. Inlinable: other modules walk the wire
/// per streamed chunk (GenerationProgress), where the calls across the module boundary cost
/// about 500 instructions a chunk (callgrind, translation-bench chunks-tracked).
public struct ProtoWireReader {
  public struct Failure: Error, Equatable {
    public let reason: String

    @usableFromInline
    init(reason: String) {
      self.reason = reason
    }
  }

  public let bytes: [UInt8]
  @usableFromInline var index: Int
  @usableFromInline let end: Int

  @inlinable
  public init(_ bytes: [UInt8], range: Range<Int>? = nil) {
    self.bytes = bytes
    self.index = range?.lowerBound ?? 0
    self.end = range?.upperBound ?? bytes.count
  }

  @inlinable
  public mutating func next() throws(Failure) -> WireField? {
    guard index < end else { return nil }
    let position = index
    var field = try readField()
    field.position = position
    return field
  }

  @inlinable
  mutating func readField() throws(Failure) -> WireField {
    let key = try readVarint()
    let number = Int32(truncatingIfNeeded: key >> 3)
    guard number > 0, key >> 3 <= 0x1FFF_FFFF else { throw Failure(reason: "invalid field number") }
    guard let wireType = WireType(rawValue: UInt8(key & 7)) else { throw Failure(reason: "invalid wire type") }
    switch wireType {
    case .varint:
      return WireField(number: number, wireType: wireType, scalar: try readVarint(), range: 0..<0)
    case .fixed64:
      guard index + 8 <= end else { throw Failure(reason: "truncated fixed64") }
      var value: UInt64 = 0
      for offset in 0..<8 { value |= UInt64(bytes[index + offset]) << (8 * UInt64(offset)) }
      index += 8
      return WireField(number: number, wireType: wireType, scalar: value, range: 0..<0)
    case .fixed32:
      guard index + 4 <= end else { throw Failure(reason: "truncated fixed32") }
      var value: UInt64 = 0
      for offset in 0..<4 { value |= UInt64(bytes[index + offset]) << (8 * UInt64(offset)) }
      index += 4
      return WireField(number: number, wireType: wireType, scalar: value, range: 0..<0)
    case .lengthDelimited:
      let length = try readVarint()
      guard length <= UInt64(end - index) else { throw Failure(reason: "length-delimited field overruns the message") }
      let start = index
      index += Int(length)
      return WireField(number: number, wireType: wireType, scalar: length, range: start..<index)
    case .startGroup, .endGroup:
      throw Failure(reason: "groups are not supported")
    }
  }

  /// Reads a varint from a packed run.
  @inlinable @inline(__always)
  public mutating func readVarint() throws(Failure) -> UInt64 {
    // Tags, most lengths and small numbers take one byte: that case stays inline.
    if index < end {
      let byte = bytes[index]
      if byte < 0x80 {
        index &+= 1
        return UInt64(byte)
      }
    }
    return try readMultiByteVarint()
  }

  @inlinable
  mutating func readMultiByteVarint() throws(Failure) -> UInt64 {
    let source = bytes
    return try Self.multiByteVarint(source.span, at: &index, end: end)
  }

  /// A varint from `bytes[index]` on, before `end`, and `index` past it: the one decoding of
  /// varints (RequestTemplate reads its keys with it too, so both accept and refuse the same).
  @inlinable
  static func multiByteVarint(_ bytes: Span<UInt8>, at index: inout Int, end: Int) throws(Failure) -> UInt64 {
    var result: UInt64 = 0
    var shift: UInt64 = 0
    while index < end {
      let byte = bytes[index]
      index += 1
      if shift == 63 && byte > 1 { throw Failure(reason: "varint overflows 64 bits") }
      result |= UInt64(byte & 0x7F) << shift
      if byte & 0x80 == 0 { return result }
      shift += 7
      if shift > 63 { throw Failure(reason: "varint too long") }
    }
    throw Failure(reason: "truncated varint")
  }

  @inlinable
  public var isAtEnd: Bool { index >= end }

  /// Where the next field starts.
  public var position: Int { index }

  public mutating func readFixed32() throws(Failure) -> UInt32 {
    guard index + 4 <= end else { throw Failure(reason: "truncated fixed32") }
    var value: UInt32 = 0
    for offset in 0..<4 { value |= UInt32(bytes[index + offset]) << (8 * UInt32(offset)) }
    index += 4
    return value
  }

  public mutating func readFixed64() throws(Failure) -> UInt64 {
    guard index + 8 <= end else { throw Failure(reason: "truncated fixed64") }
    var value: UInt64 = 0
    for offset in 0..<8 { value |= UInt64(bytes[index + offset]) << (8 * UInt64(offset)) }
    index += 8
    return value
  }
}

/// Writes protobuf's wire format. Nested messages are written in place: their length is patched
/// in when they end.
public struct ProtoWireWriter {
  public private(set) var bytes: [UInt8] = []

  public init(capacity: Int = 256) {
    bytes.reserveCapacity(capacity)
  }

  /// A writer that appends to `storage`, which it takes over (leaving it empty) until `finish`.
  init(appendingTo storage: inout [UInt8]) {
    swap(&bytes, &storage)
  }

  /// Hands the bytes back to the storage given at the start.
  mutating func finish(into storage: inout [UInt8]) {
    swap(&bytes, &storage)
  }

  @inline(__always)
  public mutating func tag(_ number: Int32, _ wireType: WireType) {
    varint(Self.key(number, wireType))
  }

  @inline(__always)
  static func key(_ number: Int32, _ wireType: WireType) -> UInt64 {
    UInt64(UInt32(bitPattern: number)) << 3 | UInt64(wireType.rawValue)
  }

  /// A tag and a varint in one step: one capacity check for both bytes, where two appends check
  /// the array's uniqueness and capacity twice (out of line, about 40 instructions each).
  @inline(__always)
  mutating func varintField(_ number: Int32, _ value: UInt64) {
    bytes.append(addingCapacity: 15) { output in
      Self.varint(Self.key(number, .varint), to: &output)
      Self.varint(value, to: &output)
    }
  }

  @inline(__always)
  static func varint(_ value: UInt64, to output: inout OutputSpan<UInt8>) {
    var value = value
    while value >= 0x80 {
      output.append(UInt8(truncatingIfNeeded: value) | 0x80)
      value >>= 7
    }
    output.append(UInt8(value))
  }

  @inline(__always)
  public mutating func varint(_ value: UInt64) {
    // Tags and most lengths take one byte: that case stays inline.
    if value < 0x80 {
      bytes.append(UInt8(value))
    } else {
      multiByteVarint(value)
    }
  }

  private mutating func multiByteVarint(_ value: UInt64) {
    var value = value
    while value >= 0x80 {
      bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
      value >>= 7
    }
    bytes.append(UInt8(value))
  }

  public mutating func fixed32(_ value: UInt32) {
    for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
  }

  public mutating func fixed64(_ value: UInt64) {
    for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
  }

  public mutating func lengthDelimited<Bytes: Collection<UInt8>>(_ number: Int32, _ value: Bytes) {
    tag(number, .lengthDelimited)
    varint(UInt64(value.count))
    bytes.append(contentsOf: value)
  }

  /// The same for `source[range]`: tag and length in one reservation, then the content by
  /// memcpy. Content of up to 64 bytes (a token, a model's name, a chunk's id) goes in the same
  /// reservation, eight bytes at a time: the slice for the memcpy cost a retain and a release of
  /// `source` (atomic operations) and a generic call of about 100 instructions.
  @inline(__always)
  mutating func lengthDelimited(_ number: Int32, _ source: [UInt8], _ range: Range<Int>) {
    let count = range.count
    // Whole words: the last may read (and write, then drop) up to 7 bytes past the content,
    // which must still be inside `source`.
    let padded = (count &+ 7) & ~7
    if count <= 64 && range.lowerBound &+ padded <= source.count {
      let words = source.span
      bytes.append(addingCapacity: 6 &+ padded) { output in
        Self.varint(Self.key(number, .lengthDelimited), to: &output)
        output.append(UInt8(truncatingIfNeeded: count))
        Self.appendWords(of: words, range, to: &output)
      }
      return
    }
    bytes.append(addingCapacity: 15) { output in
      Self.varint(Self.key(number, .lengthDelimited), to: &output)
      Self.varint(UInt64(range.count), to: &output)
    }
    bytes.append(contentsOf: source[range])
  }

  /// Appends `source[range]` eight bytes a step: the last word may read (and write, then drop)
  /// up to 7 bytes past the range, so `source` must hold them and `output` have room for them.
  @inline(__always)
  static func appendWords(of source: Span<UInt8>, _ range: Range<Int>, to output: inout OutputSpan<UInt8>) {
    let count = range.count
    let padded = (count &+ 7) & ~7
    let words = source.bytes
    let start = output.count
    output.append(repeating: 0, count: padded)
    var content = output.mutableSpan
    // `mutableBytes` is marked unsafe for element types with invalid bit patterns; UInt8 has
    // none. The stores are bounds-checked.
    var target = content.mutableBytes
    var offset = 0
    while offset < count {
      target.storeBytes(of: words.word(at: range.lowerBound &+ offset), toByteOffset: start &+ offset, as: UInt64.self)
      offset &+= 8
    }
    output.removeLast(padded &- count)
  }

  /// Starts a nested message (or packed run) for field `number`; pass the result to `end`.
  @inline(__always)
  public mutating func begin(_ number: Int32) -> Int {
    bytes.append(addingCapacity: 6) { output in
      Self.varint(Self.key(number, .lengthDelimited), to: &output)
      output.append(0)
    }
    return bytes.count
  }

  /// Ends what `begin` started, writing its length (moving the content when it needs more than
  /// one length byte).
  @inline(__always)
  public mutating func end(_ start: Int) {
    let length = bytes.count - start
    if length < 0x80 {
      bytes[start - 1] = UInt8(length)
    } else {
      moveForLongLength(start, length)
    }
  }

  /// `begin` for a writer that appends through an OutputSpan (ReplyTemplate): the tag and one
  /// byte kept for the length; pass the result to `end(_:in:)`.
  @inline(__always)
  static func begin(_ number: Int32, in output: inout OutputSpan<UInt8>) -> Int {
    varint(key(number, .lengthDelimited), to: &output)
    output.append(0)
    return output.count
  }

  /// Ends the nested message whose content starts at `start`: its length goes in the byte
  /// reserved before it, or, when it needs more, the content moves up to make room.
  @inline(__always)
  static func end(_ start: Int, in output: inout OutputSpan<UInt8>) {
    let length = output.count &- start
    if length < 0x80 {
      output[start &- 1] = UInt8(truncatingIfNeeded: length)
      return
    }
    var extra = 0
    var rest = length >> 7
    while rest > 0 {
      extra &+= 1
      rest >>= 7
    }
    output.append(repeating: 0, count: extra)
    var index = output.count &- 1
    while index >= start &+ extra {
      output[index] = output[index &- extra]
      index &-= 1
    }
    var value = UInt64(length)
    var at = start &- 1
    while value >= 0x80 {
      output[at] = UInt8(truncatingIfNeeded: value) | 0x80
      value >>= 7
      at &+= 1
    }
    output[at] = UInt8(value)
  }

  /// The rare length that takes more than one byte: the content moves to make room for it. Kept
  /// out of `end` so that the common case inlines.
  private mutating func moveForLongLength(_ start: Int, _ length: Int) {
    var prefix: [UInt8] = []
    var value = UInt64(length)
    while value >= 0x80 {
      prefix.append(UInt8(truncatingIfNeeded: value) | 0x80)
      value >>= 7
    }
    prefix.append(UInt8(value))
    bytes.replaceSubrange((start - 1)..<start, with: prefix)
  }

  /// Already-encoded fields, copied as they are.
  public mutating func append<Bytes: Collection<UInt8>>(_ encoded: Bytes) {
    bytes.append(contentsOf: encoded)
  }

  /// Drops everything written since `start - 1` (the field's tag is the caller's to remember).
  public mutating func truncate(to count: Int) {
    bytes.removeSubrange(count...)
  }

  public var count: Int { bytes.count }
}
