import Foundation

/// The Responses API on top of chat completions, for upstreams without /v1/responses: a
/// Responses request becomes a chat request, and a chat reply becomes a Responses reply. Works on
/// JSON objects; this path serves only upstreams that lack the native endpoint.
enum ResponsesChatTranslation {
  // MARK: Request

  static func chatRequest(fromResponses request: [String: Any], stream: Bool) -> [String: Any] {
    var chat: [String: Any] = [:]
    var messages: [[String: Any]] = []
    if let instructions = request["instructions"] as? String {
      messages.append(["role": "system", "content": instructions])
    }
    switch request["input"] {
    case let text as String:
      messages.append(["role": "user", "content": text])
    case let items as [[String: Any]]:
      messages += chatMessages(fromItems: items)
    default:
      break
    }
    chat["messages"] = messages
    for key in [
      "model", "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "frequency_penalty",
      "presence_penalty", "user", "parallel_tool_calls", "seed", "priority", "request_id", "cache_salt",
      "vllm_xargs", "mm_processor_kwargs",
    ] where request[key] != nil {
      chat[key] = request[key]
    }
    if let limit = request["max_output_tokens"] { chat["max_completion_tokens"] = limit }
    if let top = request["top_logprobs"] as? Int, top > 0 {
      chat["logprobs"] = true
      chat["top_logprobs"] = top
    }
    if let tools = request["tools"] as? [[String: Any]] {
      chat["tools"] = tools.compactMap { tool -> [String: Any]? in
        guard (tool["type"] as? String ?? "function") == "function" else { return nil }
        var function: [String: Any] = [:]
        for key in ["name", "description", "parameters", "strict"] where tool[key] != nil { function[key] = tool[key] }
        return ["type": "function", "function": function]
      }
    }
    switch request["tool_choice"] {
    case let mode as String: chat["tool_choice"] = mode
    case let object as [String: Any]:
      if let name = object["name"] as? String {
        chat["tool_choice"] = ["type": "function", "function": ["name": name]]
      }
    default: break
    }
    if let text = request["text"] as? [String: Any], let format = text["format"] as? [String: Any],
      let type = format["type"] as? String
    {
      if type == "json_schema" {
        var schema: [String: Any] = ["name": format["name"] ?? "response"]
        for key in ["schema", "strict", "description"] where format[key] != nil { schema[key] = format[key] }
        chat["response_format"] = ["type": "json_schema", "json_schema": schema]
      } else if type == "json_object" {
        chat["response_format"] = ["type": "json_object"]
      }
    }
    if let reasoning = request["reasoning"] as? [String: Any], let effort = reasoning["effort"] {
      chat["reasoning_effort"] = effort
    }
    // Keys the Responses API does not define go along, as the native endpoint would take them.
    let known: Set<String> = [
      "input", "instructions", "max_output_tokens", "tools", "tool_choice", "text", "reasoning", "store",
      "previous_response_id", "include", "background", "metadata", "truncation", "max_tool_calls", "top_logprobs",
      "service_tier", "stream", "enable_response_messages",
    ]
    for (key, value) in request where !known.contains(key) && chat[key] == nil { chat[key] = value }
    if stream {
      chat["stream"] = true
      chat["stream_options"] = ["include_usage": true]
    }
    return chat
  }

  private static func chatMessages(fromItems items: [[String: Any]]) -> [[String: Any]] {
    var messages: [[String: Any]] = []
    for item in items {
      switch item["type"] as? String ?? "message" {
      case "message":
        let role = item["role"] as? String ?? "user"
        switch item["content"] {
        case let text as String:
          messages.append(["role": role, "content": text])
        case let parts as [[String: Any]]:
          let chatParts = parts.compactMap { part -> [String: Any]? in
            switch part["type"] as? String {
            case "input_text", "output_text", "text": return ["type": "text", "text": part["text"] ?? ""]
            case "input_image":
              guard let url = part["image_url"] as? String else { return nil }
              var image: [String: Any] = ["url": url]
              if let detail = part["detail"] { image["detail"] = detail }
              return ["type": "image_url", "image_url": image]
            default: return nil
            }
          }
          // Assistant turns are plain text for chat templates.
          if role == "assistant" {
            messages.append(["role": role, "content": chatParts.compactMap { $0["text"] as? String }.joined()])
          } else {
            messages.append(["role": role, "content": chatParts])
          }
        default:
          messages.append(["role": role, "content": ""])
        }
      case "function_call":
        let call: [String: Any] = [
          "id": item["call_id"] ?? item["id"] ?? "", "type": "function",
          "function": ["name": item["name"] ?? "", "arguments": item["arguments"] ?? "{}"],
        ]
        if var last = messages.last, last["role"] as? String == "assistant", last["tool_calls"] != nil {
          last["tool_calls"] = (last["tool_calls"] as? [[String: Any]] ?? []) + [call]
          messages[messages.count - 1] = last
        } else {
          messages.append(["role": "assistant", "tool_calls": [call]])
        }
      case "function_call_output":
        messages.append(["role": "tool", "tool_call_id": item["call_id"] ?? "", "content": item["output"] ?? ""])
      default:
        continue
      }
    }
    return messages
  }

  // MARK: Reply

  /// A Responses object with the state of a chat completion (or of the chunks seen so far).
  struct ResponseState {
    var id: String
    var created: Int
    var model: String
    var text = ""
    var reasoning = ""
    var toolCalls: [(id: String, name: String, arguments: String)] = []
    var finishReason: String? = nil
    var usage: [String: Any]? = nil
    var maxOutputTokens: Any? = nil

    var messageID = "msg_" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
    /// The response object another source opened the stream with (a moved stream's first
    /// upstream): the reply keeps its members and changes only what the generation decides.
    var base: [String: Any]? = nil

    var isIncomplete: Bool { finishReason == "length" }

    func object(status: String? = nil) -> [String: Any] {
      var output: [[String: Any]] = []
      if !reasoning.isEmpty {
        output.append([
          "id": "rs_" + messageID.dropFirst(4), "type": "reasoning", "summary": [],
          "content": [["type": "reasoning_text", "text": reasoning]],
        ])
      }
      if !text.isEmpty || toolCalls.isEmpty {
        output.append(messageItem(status: "completed", text: text))
      }
      for call in toolCalls {
        output.append([
          "id": "fc_" + call.id, "type": "function_call", "call_id": call.id, "name": call.name,
          "arguments": call.arguments, "status": "completed",
        ])
      }
      var object = base ?? ["parallel_tool_calls": true, "tool_choice": "auto", "tools": [] as [Any]]
      object["id"] = id
      object["object"] = "response"
      object["created_at"] = created
      object["model"] = model
      object["status"] = status ?? (isIncomplete ? "incomplete" : "completed")
      object["output"] = status == "in_progress" ? [] : output
      if let maxOutputTokens { object["max_output_tokens"] = maxOutputTokens }
      if isIncomplete && status == nil { object["incomplete_details"] = ["reason": "max_output_tokens"] }
      if let usage, status == nil {
        let input = usage["prompt_tokens"] as? Int ?? 0
        let output = usage["completion_tokens"] as? Int ?? 0
        object["usage"] = ["input_tokens": input, "output_tokens": output, "total_tokens": input.saturatingAdd(output)]
      }
      return object
    }

    func messageItem(status: String, text: String?) -> [String: Any] {
      [
        "id": messageID, "type": "message", "role": "assistant", "status": status,
        "content": text.map { [["type": "output_text", "text": $0, "annotations": [] as [Any]]] } ?? [],
      ]
    }
  }

  static func responseState(fromChat chat: [String: Any], request: [String: Any]) -> ResponseState {
    let chatID = chat["id"] as? String ?? "chatcmpl-gateway"
    var state = ResponseState(
      id: "resp_" + chatID.replacingOccurrences(of: "chatcmpl-", with: ""), created: chat["created"] as? Int ?? 0,
      model: chat["model"] as? String ?? request["model"] as? String ?? "")
    state.maxOutputTokens = request["max_output_tokens"]
    state.usage = chat["usage"] as? [String: Any]
    if let choice = (chat["choices"] as? [[String: Any]])?.first {
      let message = choice["message"] as? [String: Any] ?? [:]
      state.text = message["content"] as? String ?? ""
      state.reasoning = message["reasoning"] as? String ?? message["reasoning_content"] as? String ?? ""
      state.finishReason = choice["finish_reason"] as? String
      for call in message["tool_calls"] as? [[String: Any]] ?? [] {
        let function = call["function"] as? [String: Any] ?? [:]
        state.toolCalls.append(
          (call["id"] as? String ?? "", function["name"] as? String ?? "", function["arguments"] as? String ?? ""))
      }
    }
    return state
  }

  static func data(_ object: Any) -> [UInt8] {
    (try? [UInt8](JSONSerialization.data(withJSONObject: object))) ?? Array("{}".utf8)
  }

  static func object(_ bytes: [UInt8]) -> [String: Any]? {
    (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any]
  }
}
