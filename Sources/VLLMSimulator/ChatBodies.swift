import ProtoJSON

/// Chat completion bodies shaped like vLLM 0.32's, chunk for chunk.
struct ChatBodies {
  let id = Generation.identifier("chatcmpl-")
  let created: Int64
  let model: String
  let promptTokens: Int
  static let fingerprint = "vllm-0.32.0-sim"

  func completion(choices: [[String]], finishReason: String) -> [UInt8] {
    var json = JSONWriter(capacity: 1024)
    json.beginObject()
    header(&json, object: "chat.completion")
    json.key("choices")
    json.beginArray()
    for (index, tokens) in choices.enumerated() {
      json.beginObject()
      json.key("index")
      json.int(Int64(index))
      json.key("message")
      json.beginObject()
      json.key("role")
      json.string("assistant")
      json.key("content")
      json.string(tokens.joined())
      for key in ["refusal", "annotations", "audio", "function_call", "reasoning"] {
        json.key(key)
        json.null()
      }
      json.endObject()
      json.key("logprobs")
      json.null()
      json.key("finish_reason")
      json.string(finishReason)
      json.key("stop_reason")
      json.null()
      json.key("token_ids")
      json.null()
      json.endObject()
    }
    json.endArray()
    json.key("service_tier")
    json.null()
    json.key("system_fingerprint")
    json.string(Self.fingerprint)
    usage(&json, completionTokens: choices.map(\.count).reduce(0, +))
    for key in ["prompt_logprobs", "prompt_token_ids", "prompt_text", "kv_transfer_params"] {
      json.key(key)
      json.null()
    }
    json.endObject()
    return json.bytes
  }

  /// The first chunk of a choice: its role and empty content (a stamp placeholder instead for
  /// latency probes, so that time to first token is timed by the first chunk, not the first
  /// paced token).
  func roleChunk(choice: Int, content: String = "") -> [UInt8] {
    var json = JSONWriter()
    json.beginObject()
    header(&json, object: "chat.completion.chunk")
    json.key("choices")
    json.beginArray()
    json.beginObject()
    json.key("index")
    json.int(Int64(choice))
    json.key("delta")
    json.beginObject()
    json.key("role")
    json.string("assistant")
    json.key("content")
    json.string(content)
    json.endObject()
    json.key("logprobs")
    json.null()
    json.key("finish_reason")
    json.null()
    json.endObject()
    json.endArray()
    json.key("prompt_token_ids")
    json.null()
    json.key("prompt_text")
    json.null()
    json.endObject()
    return json.bytes
  }

  /// A content chunk; the last one of a choice carries its finish reason.
  func contentChunk(
    choice: Int, token: String, finishReason: String?, fingerprint: Bool, usage: (Int)?
  ) -> [UInt8] {
    var json = JSONWriter()
    json.beginObject()
    header(&json, object: "chat.completion.chunk")
    json.key("choices")
    json.beginArray()
    json.beginObject()
    json.key("index")
    json.int(Int64(choice))
    json.key("delta")
    json.beginObject()
    json.key("content")
    json.string(token)
    json.endObject()
    json.key("logprobs")
    json.null()
    json.key("finish_reason")
    if let finishReason {
      json.string(finishReason)
      json.key("stop_reason")
      json.null()
    } else {
      json.null()
    }
    json.key("token_ids")
    json.null()
    json.endObject()
    json.endArray()
    if let usage { self.usage(&json, completionTokens: usage) }
    if fingerprint {
      json.key("system_fingerprint")
      json.string(Self.fingerprint)
    }
    json.endObject()
    return json.bytes
  }

  /// The final chunk with include_usage: no choices, the usage, and the fingerprint.
  func usageChunk(completionTokens: Int) -> [UInt8] {
    var json = JSONWriter()
    json.beginObject()
    header(&json, object: "chat.completion.chunk")
    json.key("choices")
    json.beginArray()
    json.endArray()
    usage(&json, completionTokens: completionTokens, details: false)
    json.key("system_fingerprint")
    json.string(Self.fingerprint)
    json.endObject()
    return json.bytes
  }

  private func header(_ json: inout JSONWriter, object: String) {
    json.key("id")
    json.string(id)
    json.key("object")
    json.string(object)
    json.key("created")
    json.int(created)
    json.key("model")
    json.string(model)
  }

  func usage(_ json: inout JSONWriter, completionTokens: Int, details: Bool = true) {
    json.key("usage")
    json.beginObject()
    json.key("prompt_tokens")
    json.int(Int64(promptTokens))
    json.key("total_tokens")
    json.int(Int64(promptTokens + completionTokens))
    json.key("completion_tokens")
    json.int(Int64(completionTokens))
    if details {
      json.key("prompt_tokens_details")
      json.null()
      json.key("completion_tokens_details")
      json.null()
    }
    json.endObject()
  }
}
