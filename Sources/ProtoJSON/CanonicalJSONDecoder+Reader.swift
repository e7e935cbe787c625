/// The JSON reader as the decoder uses it: its failures become errors at the current path, and
/// objects and arrays are counted against `CanonicalJSON.maximumDepth` as they open and close.
extension CanonicalJSONDecoder {
  mutating func peekKind() throws(ProtoJSONError) -> JSONReader.Kind {
    do { return try reader.peekKind() } catch { throw syntax(error) }
  }

  mutating func beginObject() throws(ProtoJSONError) {
    try enter()
    do { try reader.beginObject() } catch { throw syntax(error) }
  }

  /// The next key, or nil at the object's end.
  mutating func nextKey() throws(ProtoJSONError) -> [UInt8]? {
    do {
      guard let key = try reader.nextKey() else {
        depth -= 1
        return nil
      }
      return key
    } catch {
      throw syntax(error)
    }
  }

  mutating func beginArray() throws(ProtoJSONError) {
    try enter()
    do { try reader.beginArray() } catch { throw syntax(error) }
  }

  mutating func nextElement() throws(ProtoJSONError) -> Bool {
    do {
      guard try reader.nextElement() else {
        depth -= 1
        return false
      }
      return true
    } catch {
      throw syntax(error)
    }
  }

  mutating func readNull() throws(ProtoJSONError) {
    do { try reader.readNull() } catch { throw syntax(error) }
  }

  mutating func readBool() throws(ProtoJSONError) -> Bool {
    do { return try reader.readBool() } catch { throw syntax(error) }
  }

  mutating func readNumberText() throws(ProtoJSONError) -> [UInt8] {
    do { return Array(try reader.readNumberText()) } catch { throw syntax(error) }
  }

  mutating func readStringBytes() throws(ProtoJSONError) -> [UInt8] {
    do { return try reader.readStringBytes() } catch { throw syntax(error) }
  }

  mutating func skipValue() throws(ProtoJSONError) {
    do { try reader.skipValue() } catch { throw syntax(error) }
  }

  private mutating func enter() throws(ProtoJSONError) {
    guard depth < CanonicalJSON.maximumDepth else {
      throw path.error("nested deeper than \(CanonicalJSON.maximumDepth)")
    }
    depth += 1
  }

  private func syntax(_ failure: JSONReader.Failure) -> ProtoJSONError {
    path.error(failure.description)
  }
}
