import CNGHTTP2

/// A request's header fields laid out for nghttp2's `nghttp2_nv` array. nghttp2 copies them when
/// the request is submitted, so the storage only has to live for that call.
struct RequestHeaderBlock {
  private var storage: [UInt8] = []
  private var spans: [(nameStart: Int, nameLength: Int, valueLength: Int)] = []

  mutating func add(_ name: String, _ value: String) {
    let start = storage.count
    storage.append(contentsOf: name.utf8)
    let nameLength = storage.count - start
    storage.append(contentsOf: value.utf8)
    spans.append((start, nameLength, storage.count - start - nameLength))
  }

  /// Calls `body` with an `nghttp2_nv` array over the fields; the pointers are valid only inside.
  mutating func withNameValues<Result>(_ body: (UnsafePointer<nghttp2_nv>, Int) -> Result) -> Result {
    let spans = self.spans
    return storage.withUnsafeMutableBufferPointer { bytes in
      // SAFETY of the C boundary: nghttp2 reads these pointers during the submit call only.
      let base = bytes.baseAddress!
      let pairs = spans.map { span in
        nghttp2_nv(
          name: base + span.nameStart, value: base + span.nameStart + span.nameLength,
          namelen: span.nameLength, valuelen: span.valueLength, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
      }
      return pairs.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
    }
  }
}
