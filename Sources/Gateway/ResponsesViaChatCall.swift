import Fleet
import GRPCServer
import Logging
import NIOCore
import ProtoJSON
import VLLMClient

/// CreateResponse and StreamResponse for an upstream without /v1/responses: the request goes to
/// /v1/chat/completions, and the reply (or the chunk stream) comes back as Responses objects.
///
/// A stream whose upstream fails part way moves to another upstream serving the model when the
/// migration policy allows, as streamed chat does (see StreamingUpstreamCall): the chat goes on
/// there from the text sent so far (ResponsesContinuation), and its chunks feed the same builder,
/// so the client's events carry on with the same ids and sequence numbers. A stream relayed from
/// /v1/responses that fails is taken over the same way (see `resume`).
final class ResponsesViaChatCall: RoutedResponseHandler {
  private let call: ServerCall
  private let operation: Operation
  private let context: GatewayContext
  private var upstream: VLLMCall? = nil
  private var request: [String: Any] = [:]
  private var builder: ResponsesStreamBuilder? = nil
  private var sawDone = false
  /// What moving the stream needs; nil for calls that may not move, which pay nothing.
  private var migration: Migration? = nil

  private struct Migration {
    let model: String
    let limit: Int
    /// Upstreams this call's stream has been on.
    var upstreams: [Int]
    var moves = 0
    /// Text chunks sent over all upstreams, which is one token each as vLLM streams most text.
    var tokens: Int
    /// The tokens when the current upstream took over: its usage counts them as prompt.
    var tokensBefore = 0
    /// When the last failure was seen (monotonic nanoseconds), until the move's request is sent.
    var failedAt: UInt64 = 0
    var failure = ""
  }

  init(call: ServerCall, operation: Operation, context: GatewayContext) {
    self.call = call
    self.operation = operation
    self.context = context
    // As for every stream: the first event is what the client waits for.
    call.sendsFirstMessageAtOnce = operation.kind == .serverStreaming
  }

  private var streaming: Bool { operation.kind == .serverStreaming }

  func start(request bytes: [UInt8]) {
    guard !call.isFinished else { return }
    let json: [UInt8]
    do {
      json = try UpstreamRequestBody.json(from: bytes, operation: operation, converter: context.toJSON, stream: false)
    } catch {
      call.finish(Status(.internal, "could not read \(operation.requestType): \(error)"))
      return
    }
    request = ResponsesChatTranslation.object(json) ?? [:]
    let chat = ResponsesChatTranslation.chatRequest(fromResponses: request, stream: streaming)
    if streaming {
      var state = ResponsesChatTranslation.ResponseState(
        id: "resp_gateway", created: 0, model: request["model"] as? String ?? "")
      state.maxOutputTokens = request["max_output_tokens"]
      builder = ResponsesStreamBuilder(state: state)
      let model = request["model"] as? String ?? ""
      let limit = context.migration.limit(for: model)
      if !context.fleet.isSingle, limit > 0, ResponsesContinuation.obstacle(to: bytes) == nil {
        migration = Migration(model: model, limit: limit, upstreams: [], tokens: 0)
      }
    }
    upstream = context.startUpstream(
      for: call, path: "/v1/chat/completions", body: ResponsesChatTranslation.data(chat), handler: self,
      pacedByReader: true)
  }

  /// Takes over a stream relayed from /v1/responses whose upstream failed, from what it sent the
  /// client (`progress`): the generation goes on through chat on another upstream, and the
  /// events carry on as that stream's. False when it cannot (the caller then fails the call as it
  /// would have).
  func resume(
    request bytes: [UInt8], progress: ResponsesProgress, model: String, limit: Int, upstreams: [Int],
    after failure: String
  ) -> Bool {
    guard progress.cannotContinue == nil, !progress.isFinished, !progress.isBetweenItemAndPart,
      let json = try? UpstreamRequestBody.json(
        from: bytes, operation: operation, converter: context.toJSON, stream: false),
      let request = ResponsesChatTranslation.object(json)
    else { return false }
    self.request = request
    var state = ResponsesChatTranslation.ResponseState(
      id: "resp_gateway", created: 0, model: request["model"] as? String ?? "")
    state.maxOutputTokens = request["max_output_tokens"]
    state.text = String(decoding: progress.text, as: UTF8.self)
    if let itemID = progress.itemID { state.messageID = itemID }
    if let opening = progress.openingEvent.flatMap(ResponsesChatTranslation.object),
      let response = opening["response"] as? [String: Any]
    {
      state.id = response["id"] as? String ?? state.id
      state.created = response["created_at"] as? Int ?? 0
      state.model = response["model"] as? String ?? state.model
      state.base = response
      builder = ResponsesStreamBuilder(
        resuming: state, nextSequence: progress.nextSequence, messageOpen: progress.itemID != nil,
        owesInProgress: !progress.sawInProgress)
    } else {
      // Nothing was sent: the stream starts afresh.
      builder = ResponsesStreamBuilder(state: state)
    }
    migration = Migration(model: model, limit: limit, upstreams: upstreams, tokens: progress.tokens)
    return move(after: failure)
  }

  var vllmWantsMore: Bool { call.isWritable }

  func routed(to upstream: Upstream) {
    migration?.upstreams.append(upstream.id)
  }

  func vllmEvent(_ event: ServerSentEvent) {
    guard !call.isFinished, !sawDone, builder != nil else { return }
    if event.isDone {
      sawDone = true
      return
    }
    if let error = VLLMError.fromErrorEvent(event.data) {
      upstream?.cancel()
      upstream = nil
      // An engine that fails part way (vLLM's 5xx error events) is a replica's failure.
      if error.httpStatus >= 500, move(after: "an error event: \(error.message)") { return }
      call.finish(UpstreamStatus.error(error))
      return
    }
    guard var chunk = ResponsesChatTranslation.object(event.data) else {
      fail(StatusError(.unavailable, "vLLM sent a chat chunk that is not a JSON object"))
      return
    }
    if migration != nil { note(&chunk) }
    send(builder!.events(forChunk: chunk))
  }

  /// Counts a chunk's text, and makes a continuation's usage the whole response's.
  private func note(_ chunk: inout [String: Any]) {
    guard var migration else { return }
    if let usage = chunk["usage"] as? [String: Any] {
      chunk["usage"] = ResponsesContinuation.usage(usage, tokensBefore: migration.tokensBefore)
    }
    let choices = chunk["choices"] as? [[String: Any]] ?? []
    if let choice = choices.first(where: { ($0["index"] as? Int ?? 0) == 0 }),
      let content = (choice["delta"] as? [String: Any])?["content"] as? String, !content.isEmpty
    {
      migration.tokens += 1
      self.migration = migration
    }
  }

  var followsDepartures: Bool { migration != nil }

  /// The upstream is leaving the fleet (ejected, marked down, removed by a reload): the stream
  /// moves before it fails there, if it can; the continuation starts before the stream leaves.
  func upstreamDeparting(_ upstream: Upstream, reason: String) {
    guard let migration, migration.upstreams.last == upstream.id, !sawDone else { return }
    let leaving = self.upstream
    if move(after: "its upstream left the fleet: \(reason)") { leaving?.cancel() }
  }

  /// Carries the generation on on another upstream; false when it cannot (then the call fails
  /// as it would without migration).
  private func move(after failure: String) -> Bool {
    let detectedAt = NIODeadline.now().uptimeNanoseconds
    // Reasoning and tool calls cannot be continued as the assistant's text; a finished answer
    // has nothing left to continue.
    guard var migration, let state = builder?.state, !call.isFinished, migration.moves < migration.limit,
      state.reasoning.isEmpty, state.toolCalls.isEmpty, state.finishReason == nil,
      context.fleet.serves(migration.model, excluding: migration.upstreams)
    else { return false }
    if let deadline = call.deadline, deadline <= .now() { return false }
    guard
      let chat = ResponsesContinuation.chatRequest(fromResponses: request, text: state.text, tokens: migration.tokens)
    else { return false }
    if let record = call.account as? CallRecord {
      record.migrations += 1
      // The tokens sent since the last move are output to the client, though prompt to the next
      // upstream (whose usage the record is given); earlier ones were moved at earlier moves.
      let sinceLastMove = migration.tokens - migration.tokensBefore
      record.completionTokens = record.completionTokens.saturatingAdd(sinceLastMove)
      record.promptTokens = record.promptTokens.saturatingSubtract(sinceLastMove)
      record.trace?.streamMoved(after: failure, tokens: migration.tokens)
    }
    migration.moves += 1
    migration.tokensBefore = migration.tokens
    migration.failedAt = detectedAt
    migration.failure = failure
    self.migration = migration
    sawDone = false
    upstream = context.startUpstream(
      for: call, path: "/v1/chat/completions", body: ResponsesChatTranslation.data(chat), handler: self,
      pacedByReader: true, excluding: migration.upstreams)
    return true
  }

  private static let logger = Logger(label: "vllm-grpc-gateway")

  func vllmRequestSent(at time: UInt64) {
    guard let migration, migration.failedAt != 0 else { return }
    // The gateway's own share of a move: from seeing the failure to the next request written.
    let micros = time >= migration.failedAt ? (time - migration.failedAt) / 1000 : 0
    self.migration?.failedAt = 0
    Self.logger.info(
      "stream moved to another upstream",
      metadata: [
        "path": "\(call.path)", "model": "\(migration.model)", "move": "\(migration.moves)",
        "tokens_before": "\(migration.tokens)", "failure": "\(migration.failure)", "gateway_us": "\(micros)",
      ])
  }

  func vllmFinished(_ outcome: VLLMOutcome) {
    upstream = nil
    switch outcome {
    case .failed(let error):
      if error.countsAgainstUpstream, move(after: error.message) { return }
      call.finish(UpstreamStatus.error(error))
    case .body(let body, _, _):
      guard !streaming, let chat = ResponsesChatTranslation.object(body) else {
        call.finish(Status(.unavailable, "vLLM's chat reply is not what the Responses fallback expects"))
        return
      }
      let state = ResponsesChatTranslation.responseState(fromChat: chat, request: request)
      do {
        let json = ResponsesChatTranslation.data(state.object())
        call.respond(try context.toProto.proto(from: json, typeName: operation.responseType))
      } catch {
        call.finish(Status(.internal, "could not build the Responses reply: \(error)"))
      }
    case .streamEnded:
      guard sawDone, builder != nil else {
        if !move(after: "its event stream ended before it was complete") {
          call.finish(Status(.unavailable, "vLLM's event stream ended before it was complete"))
        }
        return
      }
      send(builder!.finish())
      call.finish(.ok)
    }
  }

  private func send(_ events: [[String: Any]]) {
    for event in events {
      do {
        call.send(
          try context.toProto.proto(from: ResponsesChatTranslation.data(event), typeName: operation.responseType))
      } catch {
        fail(StatusError(.internal, "could not build a Responses event: \(error)"))
        return
      }
    }
  }

  private func fail(_ error: StatusError) {
    upstream?.cancel()
    upstream = nil
    call.finish(error)
  }
}
