import Fleet
import ProtoJSON

/// Reads what a fleet routes by from a request body vLLM will get: the model, and the prompt's
/// bytes (chat messages, a completion prompt, Responses or embedding input) for prefix affinity.
/// The body is JSON the gateway wrote itself, in the proto's field order, so the same prompt is
/// always the same bytes. Run when there is more than one upstream to choose from, or when the
/// call's record (metrics, keys, the access log) needs the model.
package enum RoutingKeyReader {
  /// `readingPrompt`: whether the prompt's prefix is wanted; one upstream routes by nothing, and
  /// hashing the prompt's first blocks cost about 200 instructions a call (callgrind).
  static func key(path: String, body: [UInt8]?, contentType: String, readingPrompt: Bool = true) -> RoutingKey {
    let workload: RoutingKey.Workload
    switch path {
    case "/v1/chat/completions", "/v1/completions", "/v1/responses": workload = .generation
    case "/v1/embeddings", "/v1/rerank", "/rerank", "/v1/score": workload = .pooling
    default: workload = .other
    }
    guard let body, contentType == "application/json" || contentType.hasPrefix("application/json") else {
      return RoutingKey(model: "", workload: workload)
    }
    if let key = keyOfTheGatewaysForm(body, workload: workload, readingPrompt: readingPrompt) { return key }
    return key(readingAll: body, workload: workload, readingPrompt: readingPrompt)
  }

  /// `{"model":"`: how a body the gateway wrote opens when the request names a model
  /// (UpstreamRequestBody cuts a `vllm/` out right after it).
  static let modelOpening = Array(#"{"model":""#.utf8)
  /// The members that hold a prompt, each with its quote, colon and the value's first byte's offset.
  private static let promptKeys = [#"messages":"#, #"prompt":"#, #"input":"#].map { Array($0.utf8) }

  /// The key read without a JSON reader, from a body in the form the gateway writes, the model
  /// first: `{"model":"<text without escapes>",` then, for a generation, the prompt's member.
  /// Nil for any other form, which `key(readingAll:workload:)` reads. The reader took about
  /// 1,000 instructions a call for the same two members (callgrind), most of them for the keys.
  static func keyOfTheGatewaysForm(
    _ body: [UInt8], workload: RoutingKey.Workload, readingPrompt: Bool = true
  ) -> RoutingKey? {
    let bytes = body.span
    let opening = modelOpening.span
    // Runs compared a word at a time: byte by byte, the opening and the prompt's key cost about
    // 150 instructions a call (callgrind).
    guard bytes.count > opening.count, bytes.extracting(0..<opening.count).hasSameBytes(as: opening),
      let close = JSONReader.plainStringEnd(of: body, from: opening.count), close + 2 < bytes.count,
      bytes[close + 1] == UInt8(ascii: ","), bytes[close + 2] == UInt8(ascii: "\"")
    else { return nil }
    let model = String(decoding: body[opening.count..<close], as: UTF8.self)
    guard workload == .generation, readingPrompt else { return RoutingKey(model: model, workload: workload) }
    let keyStart = close + 3
    for promptKey in promptKeys where keyStart + promptKey.count < bytes.count {
      let start = keyStart + promptKey.count
      guard bytes.extracting(keyStart..<start).hasSameBytes(as: promptKey.span) else { continue }
      let prompt = start..<min(body.count, start + PromptPrefix.blockSize * PromptPrefix.maximumBlocks)
      return RoutingKey(model: model, workload: workload, prefix: PromptPrefix(body, range: prompt))
    }
    return nil
  }

  /// The key read member by member, whatever the body's form.
  static func key(readingAll body: [UInt8], workload: RoutingKey.Workload, readingPrompt: Bool = true) -> RoutingKey {
    let wantsPrompt = workload == .generation && readingPrompt
    var model: String? = nil
    var prompt: Range<Int>? = nil
    var reader = JSONReader(body)
    do {
      try reader.beginObject()
      // The gateway writes fields in the proto's order, model first: reading stops as soon as the
      // model and the prompt's start are known, so a long prompt is never walked, only hashed.
      while model == nil || (wantsPrompt && prompt == nil), let key = try reader.nextKeySlice() {
        if key.equals("model"), (try? reader.peekKind()) == .string {
          model = try reader.readString()
        } else if wantsPrompt, prompt == nil,
          key.equals("messages") || key.equals("prompt") || key.equals("input")
        {
          // The prefix is the prompt's first bytes, whatever follows them in the body.
          _ = try reader.peekKind()
          prompt = reader.index..<min(body.count, reader.index + PromptPrefix.blockSize * PromptPrefix.maximumBlocks)
          if model == nil { try reader.skipValue() }
        } else {
          try reader.skipValue()
        }
      }
    } catch {
      // A body the gateway wrote is valid JSON; if not, vLLM will say so. Route by what was read.
    }
    let prefix = prompt.map { PromptPrefix(body, range: $0) } ?? .none
    return RoutingKey(model: model ?? "", workload: workload, prefix: prefix)
  }

  /// Whether the key read the quick way, wherever it can be, is the key read member by member:
  /// what the request fuzz target checks on every body the gateway writes.
  package static func quickReadAgrees(with body: [UInt8]) -> Bool {
    for workload in [RoutingKey.Workload.generation, .pooling] {
      guard let quick = keyOfTheGatewaysForm(body, workload: workload) else { continue }
      let read = key(readingAll: body, workload: workload)
      guard quick.model == read.model, quick.prefix == read.prefix else { return false }
    }
    return true
  }
}
