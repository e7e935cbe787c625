/// Rebuilds a Responses event stream from chat completion chunks: the lifecycle events, an
/// output item per message, reasoning and tool call, their deltas, and the final response.
struct ResponsesStreamBuilder {
  private(set) var state: ResponsesChatTranslation.ResponseState
  private var sequence = 0
  private var started = false
  /// A resumed stream whose source stopped between response.created and response.in_progress.
  private var owesInProgress = false
  private var outputCount = 0
  private var messageIndex: Int? = nil
  private var reasoningIndex: Int? = nil
  /// Output index and accumulated call, by the chat tool call's index.
  private var toolCallIndices: [Int: Int] = [:]
  private var toolCallOrder: [Int] = []

  init(state: ResponsesChatTranslation.ResponseState) {
    self.state = state
  }

  /// A builder that carries on a stream another source opened (a moved stream's first
  /// upstream): the response's opening events were sent, and so, when `messageOpen`, were its
  /// message item and text part, and unless `owesInProgress`, response.in_progress; the next
  /// event has sequence number `nextSequence`.
  init(
    resuming state: ResponsesChatTranslation.ResponseState, nextSequence: Int, messageOpen: Bool,
    owesInProgress: Bool = false
  ) {
    self.state = state
    sequence = nextSequence
    started = true
    self.owesInProgress = owesInProgress
    if messageOpen {
      messageIndex = 0
      outputCount = 1
    }
  }

  private var reasoningID: String { "rs_" + state.messageID.dropFirst(4) }

  mutating func events(forChunk chunk: [String: Any]) -> [[String: Any]] {
    var events: [[String: Any]] = []
    if !started {
      started = true
      if let id = chunk["id"] as? String { state.id = "resp_" + id.replacingOccurrences(of: "chatcmpl-", with: "") }
      if let created = chunk["created"] as? Int { state.created = created }
      if let model = chunk["model"] as? String { state.model = model }
      events.append(event("response.created", ["response": state.object(status: "in_progress")]))
      events.append(event("response.in_progress", ["response": state.object(status: "in_progress")]))
    } else if owesInProgress {
      owesInProgress = false
      events.append(event("response.in_progress", ["response": state.object(status: "in_progress")]))
    }
    if let usage = chunk["usage"] as? [String: Any] { state.usage = usage }
    guard let choice = (chunk["choices"] as? [[String: Any]])?.first(where: { ($0["index"] as? Int ?? 0) == 0 }) else {
      return events
    }
    let delta = choice["delta"] as? [String: Any] ?? [:]
    if let reasoning = (delta["reasoning"] ?? delta["reasoning_content"]) as? String, !reasoning.isEmpty {
      if reasoningIndex == nil {
        reasoningIndex = outputCount
        outputCount += 1
        events.append(
          event(
            "response.output_item.added",
            [
              "output_index": reasoningIndex!,
              "item": ["id": reasoningID, "type": "reasoning", "summary": [] as [Any], "content": [] as [Any]],
            ]))
      }
      state.reasoning += reasoning
      events.append(
        event(
          "response.reasoning_text.delta",
          ["item_id": reasoningID, "output_index": reasoningIndex!, "content_index": 0, "delta": reasoning]))
    }
    if let content = delta["content"] as? String, !content.isEmpty {
      if messageIndex == nil {
        messageIndex = outputCount
        outputCount += 1
        events.append(
          event(
            "response.output_item.added",
            ["output_index": messageIndex!, "item": state.messageItem(status: "in_progress", text: nil)]))
        events.append(
          event(
            "response.content_part.added",
            [
              "item_id": state.messageID, "output_index": messageIndex!, "content_index": 0,
              "part": ["type": "output_text", "text": "", "annotations": [] as [Any]],
            ]))
      }
      state.text += content
      events.append(
        event(
          "response.output_text.delta",
          [
            "item_id": state.messageID, "output_index": messageIndex!, "content_index": 0, "delta": content,
            "logprobs": [] as [Any],
          ]))
    }
    for call in delta["tool_calls"] as? [[String: Any]] ?? [] {
      let index = call["index"] as? Int ?? 0
      let function = call["function"] as? [String: Any] ?? [:]
      if toolCallIndices[index] == nil {
        toolCallIndices[index] = outputCount
        toolCallOrder.append(index)
        outputCount += 1
        let id = call["id"] as? String ?? "call_\(index)"
        state.toolCalls.append((id, function["name"] as? String ?? "", ""))
        events.append(
          event(
            "response.output_item.added",
            [
              "output_index": toolCallIndices[index]!,
              "item": [
                "id": "fc_" + id, "type": "function_call", "call_id": id, "name": function["name"] ?? "",
                "arguments": "", "status": "in_progress",
              ],
            ]))
      }
      let position = toolCallOrder.firstIndex(of: index)!
      if let arguments = function["arguments"] as? String, !arguments.isEmpty {
        state.toolCalls[position].arguments += arguments
        events.append(
          event(
            "response.function_call_arguments.delta",
            [
              "item_id": "fc_" + state.toolCalls[position].id, "output_index": toolCallIndices[index]!,
              "delta": arguments,
            ]))
      }
    }
    if let finish = choice["finish_reason"] as? String { state.finishReason = finish }
    return events
  }

  /// The closing events, once the chat stream has ended.
  mutating func finish() -> [[String: Any]] {
    var events: [[String: Any]] = []
    if !started || owesInProgress { events += self.events(forChunk: [:]) }
    if let reasoningIndex {
      events.append(
        event(
          "response.reasoning_text.done",
          ["item_id": reasoningID, "output_index": reasoningIndex, "content_index": 0, "text": state.reasoning]))
      events.append(
        event(
          "response.output_item.done",
          [
            "output_index": reasoningIndex,
            "item": [
              "id": reasoningID, "type": "reasoning", "summary": [] as [Any],
              "content": [["type": "reasoning_text", "text": state.reasoning]],
            ],
          ]))
    }
    if let messageIndex {
      events.append(
        event(
          "response.output_text.done",
          [
            "item_id": state.messageID, "output_index": messageIndex, "content_index": 0, "text": state.text,
            "logprobs": [] as [Any],
          ]))
      events.append(
        event(
          "response.content_part.done",
          [
            "item_id": state.messageID, "output_index": messageIndex, "content_index": 0,
            "part": ["type": "output_text", "text": state.text, "annotations": [] as [Any]],
          ]))
      events.append(
        event(
          "response.output_item.done",
          ["output_index": messageIndex, "item": state.messageItem(status: "completed", text: state.text)]))
    }
    for (position, index) in toolCallOrder.enumerated() {
      let call = state.toolCalls[position]
      events.append(
        event(
          "response.function_call_arguments.done",
          [
            "item_id": "fc_" + call.id, "output_index": toolCallIndices[index]!, "arguments": call.arguments,
            "name": call.name,
          ]))
      events.append(
        event(
          "response.output_item.done",
          [
            "output_index": toolCallIndices[index]!,
            "item": [
              "id": "fc_" + call.id, "type": "function_call", "call_id": call.id, "name": call.name,
              "arguments": call.arguments, "status": "completed",
            ],
          ]))
    }
    // Like vLLM's native endpoint: response.completed, with the status inside telling incomplete.
    events.append(event("response.completed", ["response": state.object()]))
    return events
  }

  private mutating func event(_ type: String, _ fields: [String: Any]) -> [String: Any] {
    var object = fields
    object["type"] = type
    object["sequence_number"] = sequence
    sequence += 1
    return object
  }
}
