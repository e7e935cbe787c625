import Dispatch
import Gateway
import ProtoJSON
import VLLMSimulator

/// Times the translation of vLLM replies into protobuf, to compare encodings side by side in one
/// run: an embeddings reply of 16 x 1024 floats as decimal JSON and as base64, and a chat reply.
/// Run it with tools/bench-translation (release build).
@main
struct TranslationBench {
  static func main() throws {
    let arguments = CommandLine.arguments
    let iterations = arguments.count > 1 ? Int(arguments[1]) ?? 200 : 200
    if arguments.count > 2 && (arguments[2] == "chunks" || arguments[2] == "chunks-tracked") {
      try chatChunks(iterations, tracked: arguments[2] == "chunks-tracked")
      return
    }
    if arguments.count > 2 && (arguments[2] == "chunks-streamed" || arguments[2] == "chunks-kept") {
      try chatChunksStreamed(iterations, keepingChunk: arguments[2] == "chunks-kept")
      return
    }
    if arguments.count > 2 && arguments[2] == "requests" {
      try chatRequests(iterations)
      return
    }
    if arguments.count > 2 && (arguments[2] == "replies" || arguments[2] == "replies-shaped") {
      try chatReplies(iterations, shaped: arguments[2] == "replies-shaped")
      return
    }
    let inputs = (0..<16).map { "embedding input number \($0)" }
    let decimal = PoolingBodies.embeddings(inputs: inputs, model: "bench", dimensions: 1024, base64: false)
    let base64 = PoolingBodies.embeddings(inputs: inputs, model: "bench", dimensions: 1024, base64: true)
    let toProto = JSONToProto(schema: .vllmOrdered)
    let type = "vllmgateway.v1.EmbeddingResponse"
    let fromDecimal = try toProto.proto(from: decimal, typeName: type)
    let fromBase64 = try toProto.proto(from: base64, typeName: type)
    // The two differ only in their random ids.
    precondition(abs(fromDecimal.count - fromBase64.count) < 32, "both encodings must carry the same vectors")

    let decimalTime = try median(iterations) { _ = try toProto.proto(from: decimal, typeName: type) }
    let base64Time = try median(iterations) { _ = try toProto.proto(from: base64, typeName: type) }
    print("embeddings reply, 16 x 1024 floats, JSON -> protobuf, median of \(iterations) runs:")
    print("  decimal JSON  \(decimal.count) bytes   \(format(decimalTime)) µs")
    print("  base64 JSON   \(base64.count) bytes   \(format(base64Time)) µs")
    print("  protobuf      \(fromBase64.count) bytes (packed floats)")
    print("  base64 is \(format(decimalTime / base64Time))x faster to translate than decimal JSON")
    print(
      "  on the wire: protobuf is \(format(Double(decimal.count) / Double(fromBase64.count)))x smaller than decimal JSON, \(format(Double(base64.count) / Double(fromBase64.count)))x smaller than base64 JSON"
    )
  }

  /// A streamed chat chunk as vLLM 0.32 sends one per token.
  static let chatChunk = Array(
    (#"{"id":"chatcmpl-bc0a37ca0aa4398d","object":"chat.completion.chunk","created":1795574578,"#
      + #""model":"sim-model","choices":[{"index":0,"delta":{"content":" stars"},"logprobs":null,"#
      + #""finish_reason":null,"token_ids":null}]}"#).utf8)

  /// A streamed chat chunk as vLLM sends one per token, translated `iterations` thousand times:
  /// the per-chunk work of a stream, without the sockets. `tracked` adds what a stream that may
  /// move to another upstream does per chunk (GenerationProgress), in streams of 1000 chunks;
  /// the two modes under callgrind give its cost per chunk.
  static func chatChunks(_ iterations: Int, tracked: Bool = false) throws {
    let chunk = chatChunk
    let toProto = JSONToProto(schema: .vllmOrdered)
    let message = bundledMessage("ChatCompletionChunk", of: toProto)
    var progress = GenerationProgress(isChat: true)
    let count = iterations * 1000
    try timeEach(count, "chat chunk, JSON -> protobuf") { index in
      let proto = try toProto.proto(from: chunk, message: message)
      if tracked {
        if index % 1000 == 0 { progress = GenerationProgress(isChat: true) }
        if progress.note(chunk: proto) == .roleOnly { preconditionFailure("a content chunk read as role only") }
      }
      return proto.count
    }
    precondition(!tracked || progress.tokens == (count - 1) % 1000 + 1, "every chunk is one token")
  }

  /// The same chunk as a stream translates its chunks: appended to one reused output, the head
  /// every chunk repeats (id, object, created, model) kept from the first (RepeatedHead), and
  /// with `keepingChunk` what follows the head too, the token's text marked as what changes
  /// (RepeatedChunk).
  static func chatChunksStreamed(_ iterations: Int, keepingChunk: Bool) throws {
    let toProto = JSONToProto(schema: .vllmOrdered)
    let message = bundledMessage("ChatCompletionChunk", of: toProto)
    let alone = try toProto.proto(from: chatChunk, message: message)
    var head = RepeatedHead()
    var kept = RepeatedChunk()
    var output: [UInt8] = []
    try timeEach(
      iterations * 1000,
      keepingChunk
        ? "chat chunk in a stream, last chunk kept, JSON -> protobuf" : "chat chunk in a stream, JSON -> protobuf"
    ) { _ in
      output.removeAll(keepingCapacity: true)
      if keepingChunk {
        try toProto.append(from: chatChunk, message: message, to: &output, head: &head, chunk: &kept)
      } else {
        try toProto.append(from: chatChunk, message: message, to: &output, head: &head)
      }
      return output.count
    }
    precondition(output == alone, "a kept head or chunk changed the chunk's translation")
  }

  /// A whole (unary) chat completion as vLLM 0.32 answers one (tests/fixtures/vllm-recordings/
  /// chat_nonstream.http, its keys and nulls as sent), translated `iterations` thousand times:
  /// the reply's share of a unary call. `shaped`: as the gateway translates unary replies, with
  /// the shape they share learnt (ReplyShapes).
  static func chatReplies(_ iterations: Int, shaped: Bool) throws {
    let reply = Array(
      (#"{"id":"chatcmpl-86e24b3f5efaae84","object":"chat.completion","created":1795562984,"model":"tiny-llama","#
        + #""choices":[{"index":0,"message":{"role":"assistant","content":"ar ra quick exampdefar ra quick Th","#
        + #""refusal":null,"annotations":null,"audio":null,"function_call":null,"reasoning":null},"logprobs":null,"#
        + #""finish_reason":"length","stop_reason":null,"token_ids":null,"routed_experts":null}],"service_tier":null,"#
        + #""system_fingerprint":"vllm-0.32.0-768d6f53","usage":{"prompt_tokens":65,"total_tokens":77,"#
        + #""completion_tokens":12,"prompt_tokens_details":null,"completion_tokens_details":null},"#
        + #""prompt_logprobs":null,"prompt_token_ids":null,"prompt_text":null,"kv_transfer_params":null,"#
        + #""ec_transfer_params":null,"metrics":null}"#).utf8)
    let toProto = JSONToProto(schema: .vllmOrdered)
    let message = bundledMessage("ChatCompletion", of: toProto)
    if shaped {
      let shapes = ReplyShapes()
      var output: [UInt8] = []
      try timeEach(iterations * 1000, "chat reply, its shape learnt, JSON -> protobuf") { _ in
        output.removeAll(keepingCapacity: true)
        try toProto.append(from: reply, message: message, to: &output, shapes: shapes)
        return output.count
      }
    } else {
      try timeEach(iterations * 1000, "chat reply, JSON -> protobuf") { _ in
        try toProto.proto(from: reply, message: message).count
      }
    }
  }

  /// The unary chat request tools/bench sends (model, one user message, max_tokens 16), as
  /// protobuf, made into vLLM's JSON body `iterations` thousand times: the request's share of a
  /// unary call.
  static func chatRequests(_ iterations: Int) throws {
    let request: [UInt8] =
      [10, 9] + Array("sim-model".utf8) + [18, 36, 10, 4] + Array("user".utf8) + [18, 28]
      + Array("Tell me a story about a fox.".utf8) + [56, 16]
    let expected =
      #"{"model":"sim-model","messages":[{"role":"user","content":"Tell me a story about a fox."}],"#
      + #""max_tokens":16}"#
    guard let translate = RequestTranslation.translator(method: "CreateChatCompletion"),
      String(decoding: try translate(request).bytes, as: UTF8.self) == expected
    else { preconditionFailure("the chat request did not become the JSON vLLM expects") }
    try timeEach(iterations * 1000, "chat request, protobuf -> JSON") { _ in try translate(request).bytes.count }
  }

  static func bundledMessage(_ name: String, of toProto: JSONToProto) -> MessageSchema {
    guard let message = toProto.schema.message("vllmgateway.v1." + name) else {
      preconditionFailure("the bundled schema has no \(name)")
    }
    return message
  }

  /// Runs `body` `count` times (it returns the bytes it made) and prints the time each took.
  static func timeEach(_ count: Int, _ what: String, _ body: (Int) throws -> Int) rethrows {
    let start = DispatchTime.now().uptimeNanoseconds
    var bytes = 0
    for index in 0..<count { bytes &+= try body(index) }
    let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start)
    print("\(what): \(format(elapsed / Double(count))) ns each (\(bytes / count) bytes)")
  }

  static func median(_ iterations: Int, _ body: () throws -> Void) throws -> Double {
    var samples: [Double] = []
    for _ in 0..<iterations {
      let start = DispatchTime.now().uptimeNanoseconds
      try body()
      samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1000)
    }
    samples.sort()
    return samples[samples.count / 2]
  }

  static func format(_ value: Double) -> String {
    String(Double(Int(value * 100)) / 100)
  }
}
