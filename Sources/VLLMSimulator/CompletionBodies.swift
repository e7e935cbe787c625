import ProtoJSON

/// Text completion bodies shaped like vLLM 0.32's.
struct CompletionBodies {
  let id = Generation.identifier("cmpl-")
  let created: Int64
  let model: String
  let promptTokens: Int

  func completion(choices: [[String]], finishReason: String) -> [UInt8] {
    var json = JSONWriter(capacity: 1024)
    json.beginObject()
    header(&json)
    json.key("choices")
    json.beginArray()
    for (index, tokens) in choices.enumerated() {
      choice(&json, index: index, text: tokens.joined(), finishReason: finishReason, full: true)
    }
    json.endArray()
    json.key("service_tier")
    json.null()
    json.key("system_fingerprint")
    json.string(ChatBodies.fingerprint)
    usage(&json, completionTokens: choices.map(\.count).reduce(0, +))
    json.key("kv_transfer_params")
    json.null()
    json.endObject()
    return json.bytes
  }

  func chunk(choice index: Int, token: String, finishReason: String?) -> [UInt8] {
    var json = JSONWriter()
    json.beginObject()
    header(&json)
    json.key("choices")
    json.beginArray()
    choice(&json, index: index, text: token, finishReason: finishReason, full: false)
    json.endArray()
    json.endObject()
    return json.bytes
  }

  func usageChunk(completionTokens: Int) -> [UInt8] {
    var json = JSONWriter()
    json.beginObject()
    header(&json)
    json.key("choices")
    json.beginArray()
    json.endArray()
    usage(&json, completionTokens: completionTokens)
    json.endObject()
    return json.bytes
  }

  private func choice(_ json: inout JSONWriter, index: Int, text: String, finishReason: String?, full: Bool) {
    json.beginObject()
    json.key("index")
    json.int(Int64(index))
    json.key("text")
    json.string(text)
    json.key("logprobs")
    json.null()
    json.key("finish_reason")
    if let finishReason { json.string(finishReason) } else { json.null() }
    json.key("stop_reason")
    json.null()
    if full {
      for key in ["token_ids", "prompt_logprobs", "prompt_token_ids"] {
        json.key(key)
        json.null()
      }
    }
    json.endObject()
  }

  private func header(_ json: inout JSONWriter) {
    json.key("id")
    json.string(id)
    json.key("object")
    json.string("text_completion")
    json.key("created")
    json.int(created)
    json.key("model")
    json.string(model)
  }

  private func usage(_ json: inout JSONWriter, completionTokens: Int) {
    json.key("usage")
    json.beginObject()
    json.key("prompt_tokens")
    json.int(Int64(promptTokens))
    json.key("total_tokens")
    json.int(Int64(promptTokens + completionTokens))
    json.key("completion_tokens")
    json.int(Int64(completionTokens))
    json.endObject()
  }
}
