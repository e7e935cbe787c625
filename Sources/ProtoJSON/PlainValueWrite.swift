/// How the value of one key of a message is written when it has the form vLLM sends most: a
/// string without escapes, a plain integer, an object of keys, or an array of those objects.
/// Decided once per key when the schema is built, so the translator goes from a key it found
/// straight to the write, without looking at the field's slot, type and repetition each time.
/// Any other value of the key (an escaped string, a quoted number, a null element) and any key
/// without such a form (a oneof, a bool, the passthrough object) take the general path.
struct PlainValueWrite: Sendable {
  enum Form: UInt8, Sendable {
    case none, string, integer, object, objects
  }

  let form: Form
  let number: Int32
  let type: MessageSchema.FieldType
  /// For object forms: the message's position in the schema.
  let messageIndex: Int

  static let none = PlainValueWrite(form: .none, number: 0, type: .bool, messageIndex: -1)

  init(form: Form, number: Int32, type: MessageSchema.FieldType, messageIndex: Int) {
    self.form = form
    self.number = number
    self.type = type
    self.messageIndex = messageIndex
  }

  init(_ field: MessageSchema.Field) {
    let form: Form
    switch (field.type, field.isRepeated) {
    case (.string, false): form = .string
    case (.int64, false), (.uint64, false), (.int32, false), (.uint32, false): form = .integer
    case (.message, false) where field.messageIndex >= 0: form = .object
    case (.message, true) where field.messageIndex >= 0: form = .objects
    default: form = .none
    }
    self.init(form: form, number: field.number, type: field.type, messageIndex: field.messageIndex)
  }
}
