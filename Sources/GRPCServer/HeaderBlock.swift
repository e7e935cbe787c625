import CNGHTTP2

/// A list of header fields laid out for nghttp2's `nghttp2_nv` array. nghttp2 copies the names
/// and values when a frame is submitted, so the storage only has to live for that call.
package struct HeaderBlock {
  private var storage: [UInt8] = []
  private var spans: [(nameStart: Int, nameLength: Int, valueLength: Int)] = []

  package init() {}

  package mutating func add(_ name: String, _ value: String) {
    let start = storage.count
    storage.append(contentsOf: name.utf8)
    let nameLength = storage.count - start
    storage.append(contentsOf: value.utf8)
    spans.append((start, nameLength, storage.count - start - nameLength))
  }

  mutating func add(_ metadata: Metadata) {
    for entry in metadata {
      switch entry.value {
      case .string(let text): add(entry.key, text)
      case .binary(let bytes): add(entry.key, Base64.encode(bytes))
      }
    }
  }

  mutating func addStatus(_ status: Status) {
    add("grpc-status", String(status.code.rawValue))
    if !status.message.isEmpty { add("grpc-message", PercentEncoding.encodeForHeader(status.message)) }
  }

  /// Calls `body` with an `nghttp2_nv` array over the fields; the pointers are valid only inside.
  package mutating func withNameValues<Result>(_ body: (UnsafePointer<nghttp2_nv>, Int) -> Result) -> Result {
    let spans = self.spans
    return storage.withUnsafeMutableBufferPointer { bytes in
      // SAFETY of the C boundary: nghttp2 reads these pointers during the submit call only.
      let base = bytes.baseAddress!
      var pairs = [nghttp2_nv]()
      pairs.reserveCapacity(spans.count)
      for span in spans {
        pairs.append(
          nghttp2_nv(
            name: base + span.nameStart, value: base + span.nameStart + span.nameLength,
            namelen: span.nameLength, valuelen: span.valueLength, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)))
      }
      return pairs.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
    }
  }
}
