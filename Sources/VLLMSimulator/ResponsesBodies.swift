import ProtoJSON

/// Responses API bodies and stream events shaped like vLLM 0.32's: `event:` lines, a
/// `sequence_number` in every event, no [DONE].
struct ResponsesBodies {
  let id = Generation.identifier("resp_")
  let messageID = Generation.identifier("msg_")
  let created: Int64
  let model: String
  let promptTokens: Int
  let maxOutputTokens: Int?

  /// The response object in a given state, with the text produced so far.
  func response(status: String, text: String?, outputTokens: Int, incomplete: Bool) -> [UInt8] {
    var json = JSONWriter(capacity: 1024)
    writeResponse(&json, status: status, text: text, outputTokens: outputTokens, incomplete: incomplete)
    return json.bytes
  }

  private func writeResponse(
    _ json: inout JSONWriter, status: String, text: String?, outputTokens: Int, incomplete: Bool
  ) {
    json.beginObject()
    json.key("id")
    json.string(id)
    json.key("created_at")
    json.int(created)
    json.key("incomplete_details")
    if incomplete {
      json.beginObject()
      json.key("reason")
      json.string("max_output_tokens")
      json.endObject()
    } else {
      json.null()
    }
    json.key("model")
    json.string(model)
    json.key("object")
    json.string("response")
    json.key("output")
    json.beginArray()
    if let text { writeMessage(&json, text: text, status: "completed") }
    json.endArray()
    json.key("parallel_tool_calls")
    json.bool(true)
    json.key("tool_choice")
    json.string("none")
    json.key("tools")
    json.beginArray()
    json.endArray()
    json.key("max_output_tokens")
    if let maxOutputTokens { json.int(Int64(maxOutputTokens)) } else { json.null() }
    json.key("status")
    json.string(status)
    json.key("usage")
    if status == "in_progress" {
      json.null()
    } else {
      json.beginObject()
      json.key("input_tokens")
      json.int(Int64(promptTokens))
      json.key("output_tokens")
      json.int(Int64(outputTokens))
      json.key("total_tokens")
      json.int(Int64(promptTokens + outputTokens))
      json.endObject()
    }
    json.endObject()
  }

  private func writeMessage(_ json: inout JSONWriter, text: String?, status: String) {
    json.beginObject()
    json.key("id")
    json.string(messageID)
    json.key("content")
    json.beginArray()
    if let text { writePart(&json, text: text) }
    json.endArray()
    json.key("role")
    json.string("assistant")
    json.key("status")
    json.string(status)
    json.key("type")
    json.string("message")
    json.endObject()
  }

  private func writePart(_ json: inout JSONWriter, text: String) {
    json.beginObject()
    json.key("annotations")
    json.beginArray()
    json.endArray()
    json.key("text")
    json.string(text)
    json.key("type")
    json.string("output_text")
    json.key("logprobs")
    json.beginArray()
    json.endArray()
    json.endObject()
  }

  /// Every event of a streamed response, in order, as (event name, data).
  func events(tokens: [String], incomplete: Bool) -> [(String, [UInt8])] {
    var sequence = 0
    var events: [(String, [UInt8])] = []
    func event(_ type: String, _ body: (inout JSONWriter) -> Void) {
      var json = JSONWriter()
      json.beginObject()
      body(&json)
      json.key("sequence_number")
      json.int(Int64(sequence))
      json.key("type")
      json.string(type)
      json.endObject()
      events.append((type, json.bytes))
      sequence += 1
    }
    let text = tokens.joined()
    for (type, status) in [("response.created", "in_progress"), ("response.in_progress", "in_progress")] {
      event(type) { json in
        json.key("response")
        writeResponse(&json, status: status, text: nil, outputTokens: 0, incomplete: false)
      }
    }
    event("response.output_item.added") { json in
      json.key("item")
      writeMessage(&json, text: nil, status: "in_progress")
      json.key("output_index")
      json.int(0)
    }
    event("response.content_part.added") { json in
      json.key("content_index")
      json.int(0)
      json.key("item_id")
      json.string(messageID)
      json.key("output_index")
      json.int(0)
      json.key("part")
      writePart(&json, text: "")
    }
    for token in tokens {
      event("response.output_text.delta") { json in
        json.key("content_index")
        json.int(0)
        json.key("delta")
        json.string(token)
        json.key("item_id")
        json.string(messageID)
        json.key("logprobs")
        json.beginArray()
        json.endArray()
        json.key("output_index")
        json.int(0)
      }
    }
    event("response.output_text.done") { json in
      json.key("content_index")
      json.int(0)
      json.key("item_id")
      json.string(messageID)
      json.key("logprobs")
      json.beginArray()
      json.endArray()
      json.key("output_index")
      json.int(0)
      json.key("text")
      json.string(text)
    }
    event("response.content_part.done") { json in
      json.key("content_index")
      json.int(0)
      json.key("item_id")
      json.string(messageID)
      json.key("output_index")
      json.int(0)
      json.key("part")
      writePart(&json, text: text)
    }
    event("response.output_item.done") { json in
      json.key("item")
      writeMessage(&json, text: text, status: "completed")
      json.key("output_index")
      json.int(0)
    }
    // vLLM sends response.completed even when the response is incomplete.
    event("response.completed") { json in
      json.key("response")
      writeResponse(
        &json, status: incomplete ? "incomplete" : "completed", text: text, outputTokens: tokens.count,
        incomplete: incomplete)
    }
    return events
  }
}
