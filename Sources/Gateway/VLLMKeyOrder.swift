import ProtoJSON

/// The order vLLM writes the keys of the replies and chunks the gateway translates most, as
/// vLLM 0.32 sent them (tests/fixtures/vllm-recordings), including the keys the API's messages
/// lack (`metrics`, `routed_experts`, a message's `audio`), which are almost always null. The
/// translator compares each key where this order puts it before looking it up: a key out of
/// order or unknown cost a miss, a read and a hash, about 250 instructions, and a chat reply
/// had ten of them. Only speed depends on this: a vLLM that orders its keys differently is
/// translated the same, more slowly.
enum VLLMKeyOrder {
  static let byMessage: [String: [String]] = [
    "vllmgateway.v1.ChatCompletion": [
      "id", "object", "created", "model", "choices", "service_tier", "system_fingerprint", "usage",
      "prompt_logprobs", "prompt_token_ids", "prompt_text", "kv_transfer_params", "ec_transfer_params", "metrics",
    ],
    "vllmgateway.v1.ChatChoice": [
      "index", "message", "logprobs", "finish_reason", "stop_reason", "token_ids", "routed_experts",
    ],
    "vllmgateway.v1.ChatReply": [
      "role", "content", "refusal", "annotations", "audio", "function_call", "tool_calls", "reasoning",
    ],
    "vllmgateway.v1.Usage": [
      "prompt_tokens", "total_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details",
    ],
    "vllmgateway.v1.ChatCompletionChunk": [
      "id", "object", "created", "model", "choices", "usage", "system_fingerprint", "prompt_token_ids", "prompt_text",
    ],
    "vllmgateway.v1.Completion": [
      "id", "object", "created", "model", "choices", "service_tier", "system_fingerprint", "usage",
      "kv_transfer_params", "ec_transfer_params", "metrics",
    ],
    "vllmgateway.v1.CompletionChoice": [
      "index", "text", "logprobs", "finish_reason", "stop_reason", "token_ids", "prompt_logprobs", "prompt_token_ids",
      "routed_experts",
    ],
  ]
}

extension Schema {
  /// The bundled schema, reading vLLM's JSON in the order vLLM writes it.
  public static let vllmOrdered = Schema.bundled.orderingKeys(as: VLLMKeyOrder.byMessage)
}
