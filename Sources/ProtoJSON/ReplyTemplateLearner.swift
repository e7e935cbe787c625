/// Learns a `ReplyTemplate` from a reply: walks it as the translator's plain path would, cutting
/// its bytes into fixed runs at each value the translator writes. Nil for a reply with any value
/// the plain path does not write (see `ReplyTemplate`), or an escaped key.
struct ReplyTemplateLearner {
  private let schema: Schema
  private var reader: JSONReader
  private var steps: [ReplyTemplate.Step] = []
  /// Where the current run of fixed bytes started.
  private var runStart = 0
  private var depth = 0

  private init(_ json: [UInt8], schema: Schema) {
    self.schema = schema
    self.reader = JSONReader(json)
  }

  static func learn(_ json: [UInt8], as message: MessageSchema, in schema: Schema) -> ReplyTemplate? {
    guard message.isPlainObject else { return nil }
    var learner = ReplyTemplateLearner(json, schema: schema)
    do {
      guard try learner.object(message), learner.reader.isAtEnd else { return nil }
    } catch {
      return nil
    }
    learner.cut(at: json.count, .finish, resumingAt: json.count)
    return ReplyTemplate(bytes: json, steps: learner.steps)
  }

  /// Ends the current run at `position` with `action`; the next starts at `resumingAt`.
  private mutating func cut(
    at position: Int, _ action: ReplyTemplate.Action, number: Int32 = 0, type: MessageSchema.FieldType = .bool,
    resumingAt next: Int
  ) {
    steps.append(ReplyTemplate.Step(run: runStart..<position, action: action, number: number, type: type))
    runStart = next
  }

  /// The members of the object the reader is at, as `message`'s fields.
  private mutating func object(_ message: MessageSchema) throws(JSONReader.Failure) -> Bool {
    try reader.beginObject()
    while try reader.nextMember() {
      let key = try reader.readKey()
      guard case .plain = key else { return false }
      let kind = try reader.peekKind()
      // The translator drops a null whatever its key: it stays in the run.
      if kind == .null {
        try reader.readNull()
        continue
      }
      guard let entry = message.keyEntry(forKey: key, in: reader.bytes) else { return false }
      let plain = message.plainValueWrites[entry]
      let valueStart = reader.index
      switch plain.form {
      case .string where kind == .string:
        guard let text = try reader.readPlainStringRange() else { return false }
        cut(at: text.lowerBound, .string, number: plain.number, resumingAt: text.upperBound)
      case .integer where kind == .number:
        guard reader.readPlainInteger() != nil else { return false }
        cut(at: valueStart, .integer, number: plain.number, type: plain.type, resumingAt: reader.index)
      case .object where kind == .object:
        let nested = schema.message(at: plain.messageIndex)
        guard nested.isPlainObject, try self.nested(nested, number: plain.number) else { return false }
      case .objects where kind == .array:
        let element = schema.message(at: plain.messageIndex)
        guard element.isPlainObject && !element.isMapEntry else { return false }
        try reader.beginArray()
        while try reader.nextElement() {
          // A null element (an empty message) is left to the general path.
          guard try reader.peekKind() == .object, try nested(element, number: plain.number) else { return false }
        }
      default:
        return false
      }
    }
    return true
  }

  /// The object the reader is at, as a nested message: field `number` of the enclosing one.
  private mutating func nested(_ message: MessageSchema, number: Int32) throws(JSONReader.Failure) -> Bool {
    guard depth < ReplyTemplate.maximumDepth else { return false }
    depth += 1
    cut(at: reader.index, .begin, number: number, resumingAt: reader.index)
    guard try object(message) else { return false }
    cut(at: reader.index, .end, resumingAt: reader.index)
    depth -= 1
    return true
  }
}
