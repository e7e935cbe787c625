/// What the translator knows of a protobuf message: its fields by name and number, its oneofs,
/// and the roles the API's conventions give some of them (see proto/vllmgateway/v1/common.proto).
public final class MessageSchema: Sendable {
  public enum FieldType: Int32, Sendable {
    case double = 1, float, int64, uint64, int32, fixed64, fixed32, bool, string, group, message, bytes
    case uint32, enumeration, sfixed32, sfixed64, sint32, sint64

    /// The wire type one value of the type travels as (a repeated scalar's may also be packed,
    /// length-delimited).
    var wireType: WireType {
      switch self {
      case .double, .fixed64, .sfixed64: .fixed64
      case .float, .fixed32, .sfixed32: .fixed32
      case .string, .bytes, .message: .lengthDelimited
      case .group: .startGroup
      default: .varint
      }
    }
  }

  /// A class, not a struct: fields are handed around on every JSON key, and one reference is
  /// cheaper to copy than the two Strings inside.
  public final class Field: Sendable {
    public let name: String
    public let number: Int32
    public let type: FieldType
    public let isRepeated: Bool
    /// For message and enum fields: the type's full name, without a leading dot.
    public let typeName: String
    /// The real (not proto3-optional) oneof this field belongs to.
    public let oneofIndex: Int?
    /// For message fields: the type's position in the schema, so it is found without hashing.
    public let messageIndex: Int
    /// The JSON kinds (`JSONReader.Kind.bit`) this field takes as a whole value, and as one
    /// element of a list; worked out when the schema is linked, so a key costs no lookups.
    public let acceptedKinds: UInt8
    public let elementKinds: UInt8
    /// The canonical JSON key (the descriptor's `json_name`, lowerCamelCase unless the .proto
    /// set it). Only the canonical codec reads it; vLLM's JSON uses `name`.
    public let jsonName: String
    /// `"name":`, as JSON written for vLLM keys the field: made once, not escaped on every call.
    public let quotedName: JSONWriter.Key
    /// Whether being set is told apart from holding the default: message fields, oneof members
    /// and `optional` fields. Canonical JSON prints such a field even when it holds the default.
    public let hasPresence: Bool

    public init(
      name: String, number: Int32, type: FieldType, isRepeated: Bool, typeName: String, oneofIndex: Int?,
      messageIndex: Int = -1, acceptedKinds: UInt8 = 0, elementKinds: UInt8 = 0, jsonName: String? = nil,
      hasPresence: Bool? = nil
    ) {
      self.name = name
      self.number = number
      self.type = type
      self.isRepeated = isRepeated
      self.typeName = typeName
      self.oneofIndex = oneofIndex
      self.messageIndex = messageIndex
      self.acceptedKinds = acceptedKinds
      self.elementKinds = elementKinds
      self.jsonName = jsonName ?? Self.jsonName(of: name)
      self.quotedName = JSONWriter.Key(escaping: name)
      self.hasPresence = hasPresence ?? (!isRepeated && (type == .message || type == .group || oneofIndex != nil))
    }

    /// protoc's default `json_name`: each `_` dropped and the letter after it upper-cased.
    public static func jsonName(of name: String) -> String {
      var result = ""
      var upperNext = false
      for character in name {
        if character == "_" {
          upperNext = true
        } else if upperNext {
          result += character.uppercased()
          upperNext = false
        } else {
          result.append(character)
        }
      }
      return result
    }

    /// Repeated scalars of these types travel packed in proto3.
    public var isPackable: Bool {
      switch type {
      case .string, .bytes, .message, .group: false
      default: true
      }
    }
  }

  /// What translating a JSON key needs of its field, as plain values: copied around without the
  /// reference counting a `Field` costs, which showed up on every key of every streamed chunk.
  public struct Slot: Sendable {
    /// The field's position in `fields`, for its name when an error needs it.
    public let index: Int
    public let number: Int32
    public let type: FieldType
    public let isRepeated: Bool
    public let messageIndex: Int
    public let acceptedKinds: UInt8
    public let elementKinds: UInt8
    /// The real oneof the field belongs to, or -1.
    public let oneofIndex: Int

    init(_ field: Field, at index: Int) {
      self.index = index
      number = field.number
      type = field.type
      isRepeated = field.isRepeated
      messageIndex = field.messageIndex
      acceptedKinds = field.acceptedKinds
      elementKinds = field.elementKinds
      oneofIndex = field.oneofIndex ?? -1
    }

    /// A map: a repeated message field whose value is a JSON object (only a map's entries are).
    var isMap: Bool {
      isRepeated && type == .message && acceptedKinds == JSONReader.Kind.object.bit
    }

    /// Repeated scalars of these types travel packed in proto3.
    public var isPackable: Bool {
      switch type {
      case .string, .bytes, .message, .group: false
      default: true
      }
    }
  }

  public struct Oneof: Sendable {
    public let name: String
    public let fieldIndices: [Int]
    /// `"name":`, made once: the key a request's oneof is written under on every call.
    public let quotedName: JSONWriter.Key

    public init(name: String, fieldIndices: [Int]) {
      self.name = name
      self.fieldIndices = fieldIndices
      self.quotedName = JSONWriter.Key(escaping: name)
    }
  }

  public let fullName: String
  /// Struct, Value or ListValue, which have JSON forms of their own.
  public let isWellKnown: Bool
  public let fields: [Field]
  /// `fields` as slots, in the same order.
  public let slots: [Slot]
  /// By field index, the key vLLM's JSON holds the field's value under: its oneof's name for a
  /// oneof's member, its own otherwise. Read without copying a `Field` or a `Oneof` (a retain
  /// and release for each of their references).
  let memberKeys: [JSONWriter.Key]
  public let oneofs: [Oneof]
  public let isMapEntry: Bool
  private let indexByName: [String: Int]
  private let indexByNumber: [Int32: Int]
  /// The same for small field numbers, by position: no hashing for each field on the wire.
  private let indexBySmallNumber: [Int32]
  private let oneofByName: [String: Int]
  /// JSON keys (field and oneof names) by the FNV-1a hash of their bytes, open-addressed, so a
  /// key read from JSON is found without becoming a String. Targets are field indices, or
  /// -(oneof index + 1).
  private let keySlots: [Int32]
  private let keyNames: [[UInt8]]
  private let keyTargets: [Int]
  /// The same keys as JSON spells them, in quotes and followed by ':', in the order the schema
  /// declares them (or the key order it was given), and their bytes end to end: the translator
  /// compares the key after the last one found in place, before hashing. With a key order, keys
  /// it names that the schema lacks stand in their places too, as keys to pass over
  /// (`ignoredKey`): found in place, they cost a word compared instead of a miss and a hash.
  let keyPatterns: [KeyPattern]
  let keyPatternBytes: [UInt8]
  /// How each key's value is written in its commonest form, by key number.
  let plainValueWrites: [PlainValueWrite]

  /// `keyOrder`: the order a producer writes this message's keys in, when it is not the
  /// schema's (vLLM's, for the replies it sends); it names keys, known or not, and only speeds up
  /// reading JSON: what any key means is the same with it or without.
  public init(fullName: String, fields: [Field], oneofs: [Oneof], isMapEntry: Bool, keyOrder: [String]? = nil) {
    self.fullName = fullName
    self.isWellKnown = WellKnownJSON.isWellKnown(fullName)
    self.fields = fields
    self.slots = fields.enumerated().map { Slot($1, at: $0) }
    self.memberKeys = fields.map { field in field.oneofIndex.map { oneofs[$0].quotedName } ?? field.quotedName }
    self.oneofs = oneofs
    self.isMapEntry = isMapEntry
    var byName: [String: Int] = [:]
    var byNumber: [Int32: Int] = [:]
    for (index, field) in fields.enumerated() {
      byName[field.name] = index
      byNumber[field.number] = index
    }
    indexByName = byName
    indexByNumber = byNumber
    var small = [Int32](repeating: -1, count: min(Int(fields.map(\.number).max() ?? 0) + 1, 1024))
    for (index, field) in fields.enumerated() where field.number >= 0 && Int(field.number) < small.count {
      small[Int(field.number)] = Int32(index)
    }
    indexBySmallNumber = small
    oneofByName = Dictionary(oneofs.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
    // Keys in the order vLLM writes them: the schema's, except that a oneof vLLM writes under
    // its own name ("stop_reason") stands where its first member is declared, and its members'
    // own names come last. The translator compares the next few keys in place, so a member name
    // in that order (never sent) would push the keys after it out of reach.
    var names: [[UInt8]] = []
    var targets: [Int] = []
    var memberNames: [[UInt8]] = []
    var memberTargets: [Int] = []
    for (index, field) in fields.enumerated() {
      if let oneof = field.oneofIndex, byName[oneofs[oneof].name] == nil {
        if !targets.contains(-(oneof + 1)) {
          names.append(Array(oneofs[oneof].name.utf8))
          targets.append(-(oneof + 1))
        }
        memberNames.append(Array(field.name.utf8))
        memberTargets.append(index)
      } else {
        names.append(Array(field.name.utf8))
        targets.append(index)
      }
    }
    for (index, oneof) in oneofs.enumerated() where byName[oneof.name] == nil && !targets.contains(-(index + 1)) {
      names.append(Array(oneof.name.utf8))
      targets.append(-(index + 1))
    }
    names += memberNames
    targets += memberTargets
    if let keyOrder { (names, targets) = Self.ordered(names, targets, as: keyOrder) }
    var capacity = 8
    while capacity < names.count * 2 { capacity *= 2 }
    var slots = [Int32](repeating: -1, count: capacity)
    // Keys to pass over are only ever compared in place: looked up, they are unknown.
    for (entry, name) in names.enumerated() where targets[entry] != Self.ignoredKey {
      var slot = Int(Self.hash(name.span) & UInt64(capacity - 1))
      while slots[slot] >= 0 { slot = (slot + 1) & (capacity - 1) }
      slots[slot] = Int32(entry)
    }
    keySlots = slots
    keyNames = names
    keyTargets = targets
    (keyPatterns, keyPatternBytes) = KeyPattern.patterns(for: names)
    // The roles the API's conventions give some fields, worked out once.
    func structField(_ name: String) -> Int? {
      guard let index = byName[name], fields[index].typeName == "google.protobuf.Struct" else { return nil }
      return index
    }
    listField = fields.count == 1 && fields[0].isRepeated && fields[0].name == "values" ? fields[0] : nil
    variantOneof = oneofs.first { $0.name == "variant" }
    passthroughField = (structField("extra_fields") ?? structField("extra_body")).map { fields[$0] }
    otherField = structField("other").map { fields[$0] }
    let extraFields = byName["extra_fields"]
    extraFieldsIndex = extraFields
    plainValueWrites = targets.map { target in
      // A oneof's member is chosen by the value's kind; extra_fields is the passthrough object.
      guard target >= 0, target != extraFields else { return .none }
      return PlainValueWrite(fields[target])
    }
    fieldsMergedIntoObject = fields.map { field in
      field.type == .message && field.typeName == WellKnownJSON.structName && !field.isRepeated
        && (field.name == "extra_body" || field.name == "extra_fields")
    }
    isPlainObject = !isWellKnown && listField == nil && variantOneof == nil
  }

  /// Whether the message stands for a JSON object whose keys are its fields (not a list, a
  /// variant or a well-known type with a JSON form of its own).
  public let isPlainObject: Bool

  /// What a JSON key names: `.field(index)`, `.oneof(index)`, or nil.
  public enum KeyTarget {
    case field(Int)
    case oneof(Int)
  }

  /// The same for a key held in `bytes` at `range`, without slicing the array (and retaining it).
  public func target(forKey range: Range<Int>, in bytes: [UInt8]) -> KeyTarget? {
    keyEntry(forKey: range, in: bytes).flatMap(target(ofKey:))
  }

  public func target(forKey key: ArraySlice<UInt8>) -> KeyTarget? {
    keyEntry(forKey: key).flatMap(target(ofKey:))
  }

  /// What key number `entry` (a position in `keyPatterns`) names; nil for a key to pass over.
  @inline(__always)
  func target(ofKey entry: Int) -> KeyTarget? {
    let target = keyTargets[entry]
    if target >= 0 { return .field(target) }
    return target == Self.ignoredKey ? nil : .oneof(-target - 1)
  }

  /// The target of a key that a key order names and the schema does not.
  private static let ignoredKey = Int.min

  /// `names` and their `targets` in `order`: the keys it names first, in its order (those the
  /// schema lacks as keys to pass over), then the schema's other keys as they were.
  private static func ordered(_ names: [[UInt8]], _ targets: [Int], as order: [String]) -> ([[UInt8]], [Int]) {
    var orderedNames: [[UInt8]] = []
    var orderedTargets: [Int] = []
    var placed = Set<Int>()
    for key in order {
      let name = Array(key.utf8)
      guard !orderedNames.contains(name) else { continue }
      orderedNames.append(name)
      if let entry = names.firstIndex(of: name) {
        orderedTargets.append(targets[entry])
        placed.insert(entry)
      } else {
        orderedTargets.append(ignoredKey)
      }
    }
    for entry in names.indices where !placed.contains(entry) {
      orderedNames.append(names[entry])
      orderedTargets.append(targets[entry])
    }
    return (orderedNames, orderedTargets)
  }

  /// The key number of the key held in `bytes` at `range`, if the schema names it: looked up
  /// where it lies, over a span, without slicing (and retaining) the array.
  func keyEntry(forKey range: Range<Int>, in bytes: [UInt8]) -> Int? {
    keyEntry(forKey: bytes.span.extracting(range))
  }

  /// The key number of a key as the reader gave it.
  func keyEntry(forKey key: JSONReader.Key, in bytes: [UInt8]) -> Int? {
    switch key {
    case .plain(let range): keyEntry(forKey: range, in: bytes)
    case .unescaped(let copy): keyEntry(forKey: copy.span)
    }
  }

  func keyEntry(forKey key: ArraySlice<UInt8>) -> Int? {
    keyEntry(forKey: key.span)
  }

  private func keyEntry(forKey key: Span<UInt8>) -> Int? {
    let mask = keySlots.count - 1
    var slot = Int(Self.hash(key) & UInt64(mask))
    while true {
      let entry = Int(keySlots[slot])
      if entry < 0 { return nil }
      let name = keyNames[entry]
      if name.span.hasSameBytes(as: key) { return entry }
      slot = (slot + 1) & mask
    }
  }

  /// FNV-1a.
  private static func hash(_ bytes: Span<UInt8>) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for offset in 0..<bytes.count { hash = (hash ^ UInt64(bytes[offset])) &* 0x100_0000_01b3 }
    return hash
  }

  public func fieldIndex(named name: String) -> Int? { indexByName[name] }
  public func fieldIndex(number: Int32) -> Int? {
    if number >= 0 && number < indexBySmallNumber.count {
      let index = indexBySmallNumber[Int(number)]
      return index >= 0 ? Int(index) : nil
    }
    return indexByNumber[number]
  }
  public func oneofIndex(named name: String) -> Int? { oneofByName[name] }

  /// A list: one field, repeated, named `values`. It stands for a JSON array.
  public let listField: Field?

  /// The oneof named `variant`: the message is a JSON object tagged by "type".
  public let variantOneof: Oneof?

  /// `extra_body` or `extra_fields`: a Struct whose keys belong to this object's JSON.
  public let passthroughField: Field?

  /// In a variant message: `other`, a Struct holding objects of a type the API does not name.
  public let otherField: Field?

  /// The index of `extra_fields`, which a JSON key never fills directly.
  public let extraFieldsIndex: Int?

  /// By field index: whether the field is `extra_body` or `extra_fields` as a Struct, whose
  /// members JSON writes into this object (worked out once, not by comparing names per call).
  public let fieldsMergedIntoObject: [Bool]
}

/// Every message the translator may meet, by full name and by position; and, for the canonical
/// JSON codec, every enum and the types of each service method.
public struct Schema: Sendable {
  private let ordered: [MessageSchema]
  /// What is looked up by name, behind one reference: the translators hold a Schema and pass it
  /// along on every call, and two more words in it cost about 0.5% of a streamed chunk's
  /// instructions (callgrind).
  private let byName: Names

  private final class Names: Sendable {
    let messages: [String: MessageSchema]
    let enums: [String: EnumSchema]
    /// By gRPC path, "/package.Service/Method".
    let methods: [String: (input: String, output: String)]

    init(
      messages: [String: MessageSchema], enums: [String: EnumSchema],
      methods: [String: (input: String, output: String)]
    ) {
      self.messages = messages
      self.enums = enums
      self.methods = methods
    }
  }

  public var messages: [String: MessageSchema] { byName.messages }

  /// The same schema, for JSON whose objects list their keys in `keyOrders` (by message full
  /// name): translating it compares each key where the order puts it, before any lookup.
  public func orderingKeys(as keyOrders: [String: [String]]) -> Schema {
    Schema(messages: messages, enums: enums, methods: byName.methods, keyOrders: keyOrders)
  }
  public var enums: [String: EnumSchema] { byName.enums }

  /// Links the messages: each message field learns its type's position. `keyOrders`, by message
  /// full name, are the orders a producer writes keys in (see `MessageSchema.init`).
  public init(
    messages unlinked: [String: MessageSchema], enums: [String: EnumSchema] = [:],
    methods: [String: (input: String, output: String)] = [:], keyOrders: [String: [String]] = [:]
  ) {
    let names = unlinked.keys.sorted()
    let position = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
    var linked: [MessageSchema] = []
    for name in names {
      let message = unlinked[name]!
      let fields = message.fields.map { field in
        let type = unlinked[field.typeName]
        return MessageSchema.Field(
          name: field.name, number: field.number, type: field.type, isRepeated: field.isRepeated,
          typeName: field.typeName, oneofIndex: field.oneofIndex, messageIndex: position[field.typeName] ?? -1,
          acceptedKinds: Self.acceptedKinds(field, type, asElement: false),
          elementKinds: Self.acceptedKinds(field, type, asElement: true), jsonName: field.jsonName,
          hasPresence: field.hasPresence)
      }
      linked.append(
        MessageSchema(
          fullName: name, fields: fields, oneofs: message.oneofs, isMapEntry: message.isMapEntry,
          keyOrder: keyOrders[name]))
    }
    ordered = linked
    byName = Names(
      messages: Dictionary(uniqueKeysWithValues: linked.map { ($0.fullName, $0) }), enums: enums, methods: methods)
  }

  /// The JSON kinds a value of `field` may have (as a whole, or as one element of a list).
  private static func acceptedKinds(_ field: MessageSchema.Field, _ type: MessageSchema?, asElement: Bool) -> UInt8 {
    typealias Kind = JSONReader.Kind
    if field.isRepeated && !asElement {
      if let type, type.isMapEntry { return Kind.object.bit }
      // Floats may come as base64 (vLLM's embeddings).
      if field.type == .float || field.type == .double { return Kind.string.bit | Kind.array.bit }
      return Kind.array.bit
    }
    switch field.type {
    case .string, .bytes: return Kind.string.bit
    case .bool: return Kind.bool.bit
    case .enumeration: return Kind.string.bit | Kind.number.bit
    case .message, .group:
      if field.typeName == WellKnownJSON.valueName { return 0xFF }
      if field.typeName == WellKnownJSON.listValueName { return Kind.array.bit }
      guard let type else { return 0 }
      return type.listField != nil ? Kind.array.bit : Kind.object.bit
    default:
      return Kind.number.bit | (asElement ? Kind.null.bit : 0)
    }
  }

  public func message(_ fullName: String) -> MessageSchema? {
    byName.messages[fullName]
  }

  /// An enum by full name, without a leading dot.
  public func enumType(_ fullName: String) -> EnumSchema? {
    byName.enums[fullName]
  }

  /// The full names of a method's request and response messages, by its gRPC path
  /// ("/package.Service/Method"): what a Connect or gRPC route needs to pick its types.
  public func methodTypes(path: String) -> (input: String, output: String)? {
    byName.methods[path]
  }

  /// The message at `index` in the schema (a field's `messageIndex`).
  @inline(__always)
  func message(at index: Int) -> MessageSchema {
    ordered[index]
  }

  /// The type of a message field.
  @inline(__always)
  public func message(of field: MessageSchema.Field) -> MessageSchema? {
    field.messageIndex >= 0 ? ordered[field.messageIndex] : nil
  }

  @inline(__always)
  public func message(of slot: MessageSchema.Slot) -> MessageSchema? {
    slot.messageIndex >= 0 ? ordered[slot.messageIndex] : nil
  }
}
