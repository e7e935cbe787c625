/// Learns a `RequestTemplate` from a request message: walks its fields as the one-pass writer
/// (`ProtoToJSON.writeMembersInWireOrder`) would, gathering the bytes it writes between values
/// into runs. Nil for a message that writer would not take in one pass, or with anything the
/// template does not hold: an unknown field, a field the caller writes itself, a value whose
/// wire type is not its field type's own (packed scalars among them), a well-known type, a
/// list, a variant or a map; or no field at all.
struct RequestTemplateLearner {
  private let schema: Schema
  private let input: [UInt8]
  private var runs: [UInt8] = []
  private var runStart = 0
  private var steps: [RequestTemplate.Step] = []
  private var depth = 0

  private init(_ input: [UInt8], schema: Schema) {
    self.input = input
    self.schema = schema
  }

  static func learn(
    _ input: [UInt8], as message: MessageSchema, in schema: Schema, skipping: [String]
  ) -> RequestTemplate? {
    guard message.isPlainObject else { return nil }
    var learner = RequestTemplateLearner(input, schema: schema)
    // Without a member, the caller's own members would follow a comma written for none.
    guard (try? learner.members(of: message, range: 0..<input.count, skipping: skipping)) == true,
      !learner.steps.isEmpty
    else { return nil }
    learner.cut(.finish)
    return RequestTemplate(runs: learner.runs, steps: learner.steps, skipping: skipping)
  }

  /// Ends the current run with `action`.
  private mutating func cut(
    _ action: RequestTemplate.Action, tag: UInt64 = 0, type: MessageSchema.FieldType = .bool, repeats: Bool = false,
    loopTo: Int = 0
  ) {
    steps.append(
      RequestTemplate.Step(
        run: runStart..<runs.count, action: action, tag: tag, type: type, repeats: repeats, loopTo: loopTo))
    runStart = runs.count
  }

  /// The fields of the message in `range`, as `message`'s members.
  private mutating func members(
    of message: MessageSchema, range: Range<Int>, skipping: [String]
  ) throws(ProtoWireReader.Failure) -> Bool {
    var reader = ProtoWireReader(input, range: range)
    var lastIndex = -1
    var seenOneofs: UInt64 = 0
    var isArrayOpen = false
    while let field = try reader.next() {
      guard let index = message.fieldIndex(number: field.number) else { return false }
      let slot = message.slots[index]
      if index == lastIndex {
        // A repeated field's later occurrences are written as its first: the template repeats
        // that step, and checks each occurrence against it when it writes.
        guard slot.isRepeated else { return false }
        continue
      }
      guard index > lastIndex, !message.fieldsMergedIntoObject[index], !slot.isMap else { return false }
      if slot.oneofIndex >= 0 {
        guard slot.oneofIndex < 64, seenOneofs & (1 << UInt64(slot.oneofIndex)) == 0 else { return false }
        seenOneofs |= 1 << UInt64(slot.oneofIndex)
        guard !skipping.contains(message.oneofs[slot.oneofIndex].name) else { return false }
      }
      guard !skipping.contains(message.fields[index].name) else { return false }
      if isArrayOpen {
        runs.append(UInt8(ascii: "]"))
        isArrayOpen = false
      }
      if lastIndex >= 0 { runs.append(UInt8(ascii: ",")) }
      lastIndex = index
      runs.append(contentsOf: message.memberKeys[index].quoted)
      if slot.isRepeated {
        runs.append(UInt8(ascii: "["))
        isArrayOpen = true
      }
      let tag = ProtoWireWriter.key(field.number, field.wireType)
      guard field.wireType == slot.type.wireType else { return false }
      switch slot.type {
      case .string:
        cut(.string, tag: tag, repeats: slot.isRepeated)
      case .bytes:
        cut(.bytes, tag: tag, repeats: slot.isRepeated)
      case .group:
        return false
      case .message:
        guard depth < RequestTemplate.maximumDepth, let nested = schema.message(of: slot), nested.isPlainObject,
          !nested.isMapEntry
        else { return false }
        runs.append(UInt8(ascii: "{"))
        cut(.begin, tag: tag)
        let loopTo = steps.count
        depth += 1
        guard try members(of: nested, range: field.range, skipping: []) else { return false }
        depth -= 1
        runs.append(UInt8(ascii: "}"))
        cut(.end, tag: tag, repeats: slot.isRepeated, loopTo: loopTo)
      default:
        cut(.scalar, tag: tag, type: slot.type, repeats: slot.isRepeated)
      }
    }
    if isArrayOpen { runs.append(UInt8(ascii: "]")) }
    return true
  }
}
