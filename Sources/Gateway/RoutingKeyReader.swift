import Fleet
import ProtoJSON

/// Reads what a fleet routes by from a request body vLLM will get: the model, and the prompt's
/// bytes (chat messages, a completion prompt, Responses or embedding input) for prefix affinity.
/// The body is JSON the gateway wrote itself, in the proto's field order, so the same prompt is
/// always the same bytes. Run only when there is more than one upstream to choose from.
enum RoutingKeyReader {
  static func key(path: String, body: [UInt8]?, contentType: String) -> RoutingKey {
    let workload: RoutingKey.Workload
    switch path {
    case "/v1/chat/completions", "/v1/completions", "/v1/responses": workload = .generation
    case "/v1/embeddings", "/v1/rerank", "/rerank", "/v1/score": workload = .pooling
    default: workload = .other
    }
    guard let body, contentType.hasPrefix("application/json") else { return RoutingKey(model: "", workload: workload) }
    var model: String? = nil
    var prompt: Range<Int>? = nil
    var reader = JSONReader(body)
    do {
      try reader.beginObject()
      // The gateway writes fields in the proto's order, model first: reading stops as soon as the
      // model and the prompt's start are known, so a long prompt is never walked, only hashed.
      while model == nil || (workload == .generation && prompt == nil), let key = try reader.nextKeySlice() {
        if key.equals("model"), (try? reader.peekKind()) == .string {
          model = try reader.readString()
        } else if workload == .generation, prompt == nil,
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
}
