import Foundation
import ProtoJSON
import Testing

@testable import Gateway

/// The pieces a moving Responses stream is made of, without sockets: what the client was sent
/// (read from the events' wire bytes), the chat request that continues it, and the events that
/// carry on the first upstream's.
@Suite struct ResponsesContinuationTests {
  private let toProto = JSONToProto(schema: .bundled)
  private let toJSON = ProtoToJSON(schema: .bundled)

  private func proto(_ json: String, type: String) throws -> [UInt8] {
    var out: [UInt8] = []
    try toProto.append(from: Array(json.utf8), message: toProto.schema.message("vllmgateway.v1.\(type)")!, to: &out)
    return out
  }

  /// Notes an event as it leaves, as StreamingUpstreamCall does.
  private func note(_ progress: inout ResponsesProgress, _ json: String) throws {
    progress.note(event: try proto(json, type: "ResponseStreamEvent"), json: Array(json.utf8))
  }

  private static let created =
    #"{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","created_at":7,"model":"m","object":"response","status":"in_progress","output":[],"tool_choice":"none","tools":[],"parallel_tool_calls":true,"usage":null}}"#
  private static let itemAdded =
    #"{"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"msg_1","type":"message","role":"assistant","status":"in_progress","content":[]}}"#
  private static let partAdded =
    #"{"type":"response.content_part.added","sequence_number":3,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}}"#

  private static func delta(_ text: String, _ sequence: Int) -> String {
    #"{"type":"response.output_text.delta","sequence_number":\#(sequence),"item_id":"msg_1","output_index":0,"content_index":0,"delta":"\#(text)","logprobs":[]}"#
  }

  private func openedMessage() throws -> ResponsesProgress {
    var progress = ResponsesProgress()
    try note(&progress, Self.created)
    try note(
      &progress,
      Self.created.replacingOccurrences(
        of: "created\",\"sequence_number\":0", with: "in_progress\",\"sequence_number\":1"))
    try note(&progress, Self.itemAdded)
    try note(&progress, Self.partAdded)
    return progress
  }

  @Test func progressReadsTheMessageTextAndSequence() throws {
    var progress = try openedMessage()
    #expect(progress.itemID == "msg_1" && progress.nextSequence == 4 && progress.sawInProgress)
    try note(&progress, Self.delta(" The", 4))
    try note(&progress, Self.delta(" fox", 5))
    #expect(String(decoding: progress.text, as: UTF8.self) == " The fox")
    #expect(progress.tokens == 2 && progress.nextSequence == 6)
    #expect(progress.cannotContinue == nil && !progress.isFinished && !progress.isBetweenItemAndPart)
    let opening = try #require(progress.openingEvent)
    #expect(String(decoding: opening, as: UTF8.self).contains("response.in_progress"))
    try note(
      &progress,
      #"{"type":"response.output_text.done","sequence_number":6,"item_id":"msg_1","output_index":0,"content_index":0,"text":" The fox"}"#
    )
    #expect(progress.isFinished)
  }

  @Test func progressRefusesWhatAContinuationCannotReproduce() throws {
    var reasoning = ResponsesProgress()
    try note(&reasoning, Self.created)
    try note(
      &reasoning,
      #"{"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"id":"rs_1","type":"reasoning","summary":[]}}"#
    )
    #expect(reasoning.cannotContinue == "the response's output is not a message")

    var call = ResponsesProgress()
    try note(
      &call,
      #"{"type":"response.function_call_arguments.delta","sequence_number":1,"item_id":"fc_1","output_index":0,"delta":"{"}"#
    )
    #expect(call.cannotContinue != nil)

    var logprobs = try openedMessage()
    try note(
      &logprobs,
      #"{"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"a","logprobs":[{"token":"a","logprob":-0.1,"top_logprobs":[]}]}"#
    )
    #expect(logprobs.cannotContinue == "the text has logprobs")

    var second = try openedMessage()
    try note(&second, Self.itemAdded.replacingOccurrences(of: "\"output_index\":0", with: "\"output_index\":1"))
    #expect(second.cannotContinue == "the response has several output items")

    var halfOpen = ResponsesProgress()
    try note(&halfOpen, Self.created)
    try note(&halfOpen, Self.itemAdded)
    #expect(halfOpen.isBetweenItemAndPart)
  }

  private func request(_ json: String) throws -> [UInt8] { try proto(json, type: "ResponseRequest") }

  @Test func requestsThatCannotBeContinuedThroughChat() throws {
    #expect(
      ResponsesContinuation.obstacle(to: try request(#"{"model":"m","input":"hi","max_output_tokens":9}"#)) == nil)
    #expect(ResponsesContinuation.obstacle(to: try request(#"{"input":"hi","top_logprobs":2}"#)) != nil)
    #expect(ResponsesContinuation.obstacle(to: try request(#"{"input":"hi","store":true}"#)) != nil)
    #expect(ResponsesContinuation.obstacle(to: try request(#"{"input":"hi","previous_response_id":"r"}"#)) != nil)
    #expect(ResponsesContinuation.obstacle(to: try request(#"{"input":"hi","background":true}"#)) != nil)
    #expect(
      ResponsesContinuation.obstacle(to: try request(#"{"input":"hi","include":["message.output_text.logprobs"]}"#))
        != nil)
    #expect(
      ResponsesContinuation.obstacle(to: try request(#"{"input":"hi","text":{"format":{"type":"json_object"}}}"#))
        != nil)
    #expect(
      ResponsesContinuation.obstacle(to: try request(#"{"input":"hi","text":{"format":{"type":"text"}}}"#)) == nil)
    let messages = #"{"input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}]}"#
    #expect(ResponsesContinuation.obstacle(to: try request(messages)) == nil)
    let reasoning = #"{"input":[{"type":"reasoning","id":"rs_1","summary":[]},{"role":"user","content":"hi"}]}"#
    #expect(ResponsesContinuation.obstacle(to: try request(reasoning)) != nil)
  }

  @Test func theChatRequestContinuesTheTextWithWhatIsLeft() throws {
    let original: [String: Any] = [
      "model": "m", "input": "hi", "instructions": "be brief", "max_output_tokens": 10, "temperature": 0.5,
      "seed": 7, "vllm_sim": ["fault": "drop"],
    ]
    let chat = try #require(ResponsesContinuation.chatRequest(fromResponses: original, text: " a b", tokens: 2))
    let messages = try #require(chat["messages"] as? [[String: Any]])
    #expect(messages.map { $0["role"] as? String } == ["system", "user", "assistant"])
    #expect(messages.last?["content"] as? String == " a b")
    #expect(chat["continue_final_message"] as? Bool == true && chat["add_generation_prompt"] as? Bool == false)
    #expect(chat["max_completion_tokens"] as? Int == 8)
    #expect(chat["seed"] as? Int == 7 && chat["temperature"] as? Double == 0.5 && chat["vllm_sim"] != nil)
    #expect(chat["stream"] as? Bool == true)
    // Nothing sent yet: the answer from its start, as a plain chat.
    let fresh = try #require(ResponsesContinuation.chatRequest(fromResponses: original, text: "", tokens: 0))
    #expect((fresh["messages"] as? [Any])?.count == 2 && fresh["continue_final_message"] == nil)
    #expect(fresh["max_completion_tokens"] as? Int == 10)
    // Every token generated: nothing left to continue.
    #expect(ResponsesContinuation.chatRequest(fromResponses: original, text: "x", tokens: 10) == nil)
  }

  @Test func aContinuationsUsageCountsTheTokensBefore() {
    let usage = ResponsesContinuation.usage(
      ["prompt_tokens": 30, "completion_tokens": 6, "total_tokens": 36], tokensBefore: 4)
    #expect(usage["prompt_tokens"] as? Int == 26 && usage["completion_tokens"] as? Int == 10)
    #expect(usage["total_tokens"] as? Int == 36)
  }

  @Test func aResumedBuilderCarriesOnTheFirstUpstreamsEvents() throws {
    var state = ResponsesChatTranslation.ResponseState(id: "resp_1", created: 7, model: "m")
    state.messageID = "msg_1"
    state.text = " The"
    state.base = ["id": "resp_1", "tool_choice": "none", "tools": [] as [Any], "usage": NSNull()]
    var builder = ResponsesStreamBuilder(resuming: state, nextSequence: 5, messageOpen: true)
    let role = builder.events(forChunk: [
      "id": "chatcmpl-2", "choices": [["index": 0, "delta": ["role": "assistant"]]],
    ])
    #expect(role.isEmpty, "the continuation's opening is not repeated")
    let events = builder.events(forChunk: [
      "id": "chatcmpl-2", "choices": [["index": 0, "delta": ["content": " fox"]]],
    ])
    #expect(events.count == 1)
    #expect(events[0]["type"] as? String == "response.output_text.delta" && events[0]["sequence_number"] as? Int == 5)
    #expect(events[0]["item_id"] as? String == "msg_1" && events[0]["output_index"] as? Int == 0)
    _ = builder.events(forChunk: [
      "choices": [["index": 0, "delta": [:] as [String: Any], "finish_reason": "length"]],
      "usage": ResponsesContinuation.usage(["prompt_tokens": 12, "completion_tokens": 1], tokensBefore: 1),
    ])
    let end = builder.finish()
    #expect(
      end.map { $0["type"] as? String } == [
        "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed",
      ])
    #expect(end.map { $0["sequence_number"] as? Int } == [6, 7, 8, 9])
    #expect(end[0]["text"] as? String == " The fox")
    let response = try #require(end[3]["response"] as? [String: Any])
    #expect(response["id"] as? String == "resp_1" && response["tool_choice"] as? String == "none")
    #expect(response["status"] as? String == "incomplete")
    let usage = try #require(response["usage"] as? [String: Any])
    #expect(usage["input_tokens"] as? Int == 11 && usage["output_tokens"] as? Int == 2)
    // A source that stopped before response.in_progress: the continuation sends it first.
    var opened = state
    opened.text = ""
    var early = ResponsesStreamBuilder(resuming: opened, nextSequence: 1, messageOpen: false, owesInProgress: true)
    let first = early.events(forChunk: ["choices": [["index": 0, "delta": ["content": " fox"]]]])
    #expect(
      first.map { $0["type"] as? String } == [
        "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta",
      ])
    #expect(first.map { $0["sequence_number"] as? Int } == [1, 2, 3, 4])
    // The events are what the client's protobuf holds.
    for event in end + first {
      _ = try proto(String(decoding: ResponsesChatTranslation.data(event), as: UTF8.self), type: "ResponseStreamEvent")
    }
  }
}
