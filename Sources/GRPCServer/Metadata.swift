/// Request or response metadata: an ordered list of key/value pairs. Keys ending in `-bin` carry
/// binary values, which travel base64-encoded on the wire; all other values are ASCII text.
public struct Metadata: Sendable, Hashable, Sequence {
  public enum Value: Sendable, Hashable {
    case string(String)
    case binary([UInt8])
  }

  public struct Entry: Sendable, Hashable {
    public var key: String
    public var value: Value
  }

  private var entries: [Entry] = []

  public init() {}

  public init(_ pairs: [(String, String)]) {
    for (key, value) in pairs { add(key, value) }
  }

  public var count: Int { entries.count }
  public var isEmpty: Bool { entries.isEmpty }

  public mutating func add(_ key: String, _ value: String) {
    entries.append(Entry(key: key.lowercased(), value: .string(value)))
  }

  public mutating func add(_ key: String, binary value: [UInt8]) {
    entries.append(Entry(key: key.lowercased(), value: .binary(value)))
  }

  /// A request's metadata as its headers arrive: room for two at the first (what gRPC clients
  /// commonly send besides the headers gRPC itself reads: a user-agent and a key or trace
  /// context), since growing one by one cost another allocation and copy a call. Not four: an
  /// entry is 40 bytes, and every open stream holds its metadata.
  mutating func append(_ entry: Entry) {
    if entries.capacity == 0 { entries.reserveCapacity(2) }
    entries.append(entry)
  }

  /// The first text value under `key`, if any. Lengths are compared first: String's `==` on two
  /// different short keys takes its slow path, about 50 instructions an entry (callgrind).
  public func first(_ key: String) -> String? {
    let length = key.utf8.count
    // By index, not `for entry in entries`: the iterator copied each entry, a retain and release
    // of its key and value, about 90 instructions a lookup of two entries (callgrind).
    for index in entries.indices where entries[index].key.utf8.count == length && entries[index].key == key {
      if case .string(let text) = entries[index].value { return text }
    }
    return nil
  }

  /// The first text values under two or three keys, found in one pass over the entries: a
  /// lookup each walked them all again (about 85 instructions for four entries, callgrind). Not
  /// generic over the keys' count: unspecialized across the module, that cost more than it saved.
  public func first(_ first: String, _ second: String, _ third: String? = nil) -> (String?, String?, String?) {
    var values: (String?, String?, String?) = (nil, nil, nil)
    let lengths = (first.utf8.count, second.utf8.count, third?.utf8.count ?? -1)
    for index in entries.indices {
      let length = entries[index].key.utf8.count
      guard length == lengths.0 || length == lengths.1 || length == lengths.2,
        case .string(let text) = entries[index].value
      else { continue }
      if values.0 == nil, length == lengths.0, entries[index].key == first {
        values.0 = text
      } else if values.1 == nil, length == lengths.1, entries[index].key == second {
        values.1 = text
      } else if values.2 == nil, let third, length == lengths.2, entries[index].key == third {
        values.2 = text
      }
    }
    return values
  }

  /// The first binary value under `key` (which should end in `-bin`), if any.
  public func firstBinary(_ key: String) -> [UInt8]? {
    for entry in entries where entry.key == key {
      if case .binary(let bytes) = entry.value { return bytes }
    }
    return nil
  }

  public func makeIterator() -> IndexingIterator<[Entry]> {
    entries.makeIterator()
  }

  /// Takes out every entry under `key`, returning the first text value.
  mutating func remove(_ key: String) -> String? {
    let value = first(key)
    if value != nil || entries.contains(where: { $0.key == key }) { entries.removeAll { $0.key == key } }
    return value
  }
}
