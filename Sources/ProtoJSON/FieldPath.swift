/// Where in a message the canonical JSON codec is, for errors that name the field exactly
/// ("messages[0].role: expected a string"). Kept as a stack of parts and spelled out only when an
/// error is thrown.
struct FieldPath {
  enum Part {
    /// A field, by the key the JSON used (or its json_name, when printing).
    case field(String)
    /// An element of a repeated field.
    case index(Int)
    /// A map entry or Struct member, by its key.
    case key(String)
  }

  private var parts: [Part] = []

  mutating func push(_ part: Part) { parts.append(part) }
  mutating func pop() { parts.removeLast() }

  var text: String {
    var text = ""
    for part in parts {
      switch part {
      case .field(let name): text += text.isEmpty ? name : "." + name
      case .index(let index): text += "[\(index)]"
      case .key(let key): text += "[\"\(key)\"]"
      }
    }
    return text
  }

  /// An error about the value at this path: "path: problem", or the problem alone at the top.
  func error(_ problem: String) -> ProtoJSONError {
    let text = self.text
    return ProtoJSONError(text.isEmpty ? problem : text + ": " + problem)
  }
}
