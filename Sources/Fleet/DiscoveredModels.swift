import ProtoJSON

/// An upstream's answer to GET /v1/models: the ids, and each entry's JSON as vLLM wrote it, so a
/// merged list keeps every field.
struct DiscoveredModels: Sendable, Equatable {
  var ids: [String]
  var entries: [[UInt8]]

  /// Nil when the body is not a model list.
  init?(json: [UInt8]) {
    var reader = JSONReader(json)
    var ids: [String] = []
    var entries: [[UInt8]] = []
    do {
      try reader.beginObject()
      var sawData = false
      while let key = try reader.nextKey() {
        guard key == Array("data".utf8) else {
          try reader.skipValue()
          continue
        }
        sawData = true
        try reader.beginArray()
        while try reader.nextElement() {
          let entry = Array(try reader.rawValue())
          var fields = JSONReader(entry)
          try fields.beginObject()
          var id: String? = nil
          while let field = try fields.nextKey() {
            if field == Array("id".utf8), (try? fields.peekKind()) == .string {
              id = try fields.readString()
            } else {
              try fields.skipValue()
            }
          }
          guard let id else { return nil }
          ids.append(id)
          entries.append(entry)
        }
      }
      guard sawData else { return nil }
    } catch {
      return nil
    }
    self.ids = ids
    self.entries = entries
  }
}
