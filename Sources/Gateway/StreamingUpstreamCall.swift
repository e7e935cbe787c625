import Fleet
import GRPCServer
import Logging
import NIOCore
import ProtoJSON
import VLLMClient

/// A server-streaming RPC: vLLM's event stream relayed event by event as response messages. An
/// error event ends the call with its status after the messages already sent; a stream that
/// stops before its end (`[DONE]` or a terminal event) is never reported as OK. A slow reader
/// holds vLLM back: reading pauses while the call's send buffer is full.
///
/// A streamed chat or text completion whose upstream fails part way (a reset or cut connection,
/// silence, a 5xx, an error event of vLLM's engine) moves to another upstream serving the model,
/// when the migration policy allows: the generation goes on there from where it stopped (see
/// ContinuationRequest) and the client's stream carries on with the same id, no text twice or
/// missing, and one usage for the whole generation.
final class StreamingUpstreamCall: RoutedResponseHandler {
  private let call: ServerCall
  private let operation: Operation
  private let context: GatewayContext
  /// The context's translator, held here: read through the context (a class) on every chunk,
  /// it cost a retain and a release each time (about 80 instructions a chunk, callgrind).
  private let toProto: JSONToProto
  /// The leading members every chunk of the stream repeats, translated once (RepeatedHead).
  private var head = RepeatedHead()
  /// What followed the head in the last chunk, the token's text marked as what changes
  /// (RepeatedChunk); from the start, the one the operation's streams learnt last.
  private var repeatedChunk: RepeatedChunk
  /// The event being delivered was offered borrowed and did not fit `repeatedChunk`: its copy,
  /// which comes next, is not tried against it again.
  private var keptChunkMissed = false
  private var upstream: VLLMCall? = nil
  /// Called instead of failing when the upstream lacks the operation's route (404, 405 or 501
  /// without a vLLM error type), so the caller can take another way.
  var onRouteMissing: (() -> Void)? = nil
  private var sawEnd = false
  /// The chunks' message type. Not optional: bound from an optional on every chunk, it cost a
  /// retain and a release each time. When the schema lacks the operation's response type (a
  /// broken build), it is an empty message and `knowsChunkSchema` is false.
  private let chunkSchema: MessageSchema
  private let knowsChunkSchema: Bool
  /// What moving the stream needs, for calls that may move; nil for the others, which pay nothing.
  private var migration: Migration? = nil
  /// For a Responses stream that may move: what it has sent, which a continuation through chat
  /// carries on from (see the Responses extension below); nil for the others.
  private var responsesMigration: ResponsesMigration? = nil

  private final class Migration {
    let request: [UInt8]
    let model: String
    let limit: Int
    var progress: GenerationProgress
    var rewriter = ContinuedEventRewriter()
    /// Upstreams this call's stream has been on.
    var upstreams: [Int] = []
    var moves = 0
    /// Tokens already moved from the call's prompt count to its completion count.
    var tokensCounted = 0
    /// After a move, the new upstream's opening role chunk is not sent again.
    var skipsRoleChunk = false
    /// When the last failure was seen (monotonic nanoseconds), until the move's request is sent.
    var failedAt: UInt64 = 0
    var failure = ""

    init(request: [UInt8], model: String, limit: Int, isChat: Bool) {
      self.request = request
      self.model = model
      self.limit = limit
      self.progress = GenerationProgress(isChat: isChat)
    }
  }

  init(call: ServerCall, operation: Operation, context: GatewayContext) {
    self.call = call
    self.operation = operation
    self.context = context
    self.toProto = context.toProto
    self.repeatedChunk = operation.repeatedChunks.forNewStream()
    let chunkSchema = context.responseSchema(of: operation)
    self.chunkSchema = chunkSchema ?? MessageSchema(fullName: "", fields: [], oneofs: [], isMapEntry: false)
    self.knowsChunkSchema = chunkSchema != nil
    // Time to first token is what a streaming client feels most.
    call.sendsFirstMessageAtOnce = true
  }

  func start(request: [UInt8]) {
    let body: (bytes: [UInt8], contentType: String)
    do {
      body = try UpstreamRequestBody.make(from: request, operation: operation, context: context, stream: true)
    } catch {
      call.finish(Status(.internal, "could not read \(operation.requestType): \(error)"))
      return
    }
    prepareMigration(for: request)
    prepareResponsesMigration(for: request)
    upstream = context.startUpstream(
      for: call, path: operation.upstreamPath, body: body.bytes, contentType: body.contentType, handler: self,
      pacedByReader: true)
  }

  private func prepareMigration(for request: [UInt8]) {
    let isChat = operation.upstreamPath == "/v1/chat/completions"
    guard isChat || operation.upstreamPath == "/v1/completions", !context.fleet.isSingle else { return }
    let model = (try? UpstreamRequestBody.topLevelString(field: 1, in: request)) ?? ""
    let limit = context.migration.limit(for: model)
    guard limit > 0, ContinuationRequest.obstacle(to: request, isChat: isChat) == nil else { return }
    migration = Migration(request: request, model: model, limit: limit, isChat: isChat)
  }

  var vllmWantsMore: Bool { call.isWritable }

  func routed(to upstream: Upstream) {
    migration?.upstreams.append(upstream.id)
    responsesMigration?.upstreams.append(upstream.id)
  }

  /// A token's chunk that fits the kept head and chunk, translated where it lies in the read;
  /// anything else is declined, to come again copied. A stream that may move takes them while
  /// it is on its first upstream and its continuation has the stream's identity (from its first
  /// chunk): the progress a move needs is read from the protobuf written. A stream that moved
  /// (its chunks rewritten) and a Responses stream that may move take none.
  func vllmEvent(borrowing data: Span<UInt8>, receivedAt: UInt64) -> Bool {
    guard responsesMigration == nil, repeatedChunk.isKept, knowsChunkSchema, !call.isFinished, !sawEnd else {
      return false
    }
    if let migration, migration.moves > 0 || migration.rewriter.id == nil { return false }
    let written = call.send(inputArrivedAt: receivedAt) { output, start in
      guard toProto.appendKept(from: data, message: chunkSchema, to: &output, head: &head, chunk: &repeatedChunk)
      else { return false }
      // As `translate` notes a copied chunk (a first upstream's chunks are never skipped).
      _ = migration?.progress.note(chunk: output, range: start..<output.count)
      return true
    }
    keptChunkMissed = !written
    return written
  }

  func vllmEvent(_ event: ServerSentEvent) {
    let keptTried = keptChunkMissed
    keptChunkMissed = false
    guard !call.isFinished, !sawEnd else { return }
    if event.isDone {
      sawEnd = true
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
    if let name = event.event, operation.terminalEvents.contains(name) { sawEnd = true }
    do {
      guard knowsChunkSchema else { throw ProtoJSONError("unknown message type \(operation.responseType)") }
      // Translated straight into the call's output: no buffer of the stream's own, no copy.
      let wasKept = repeatedChunk.isKept
      try call.send(inputArrivedAt: event.receivedAt) { output, start in
        try translate(event, into: &output, from: start, keptTried: keptTried)
      }
      // Learnt by this stream: the streams after it start with it.
      if !wasKept && repeatedChunk.isKept { operation.repeatedChunks.learnt(repeatedChunk) }
    } catch {
      upstream?.cancel()
      upstream = nil
      call.finish(Status(.unavailable, "vLLM sent an event that is not valid JSON: \(error)"))
    }
  }

  /// Appends the event as a message to `output`, where its message starts at `start`, noting
  /// what a move would need; false when it is not for the client (a continuation's opening role).
  private func translate(
    _ event: ServerSentEvent, into output: inout [UInt8], from start: Int, keptTried: Bool
  ) throws -> Bool {
    let schema = chunkSchema
    guard let migration else {
      try toProto.append(
        from: event.data, message: schema, to: &output, head: &head, chunk: &repeatedChunk, keptTried: keptTried)
      responsesMigration?.progress.note(event: output, range: start..<output.count, json: event.data)
      return true
    }
    if migration.moves == 0 {
      migration.rewriter.learn(from: event.data)
      try toProto.append(
        from: event.data, message: schema, to: &output, head: &head, chunk: &repeatedChunk, keptTried: keptTried)
    } else {
      try toProto.append(
        from: migration.rewriter.rewrite(event.data), message: schema, to: &output, head: &head, chunk: &repeatedChunk)
    }
    let carried = migration.progress.note(chunk: output, range: start..<output.count)
    if migration.skipsRoleChunk {
      if carried == .roleOnly { return false }
      migration.skipsRoleChunk = false
    }
    return true
  }

  func vllmRequestSent(at time: UInt64) {
    call.requestForwarded(at: time)
    if let migration, migration.failedAt != 0 {
      // The gateway's own share of a move: from seeing the failure to the next request written.
      let micros = time >= migration.failedAt ? (time - migration.failedAt) / 1000 : 0
      migration.failedAt = 0
      Self.logger.info(
        "stream moved to another upstream",
        metadata: [
          "path": "\(call.path)", "model": "\(migration.model)", "move": "\(migration.moves)",
          "tokens_before": "\(migration.progress.tokens)", "failure": "\(migration.failure)",
          "gateway_us": "\(micros)",
        ])
    }
  }

  private static let logger = Logger(label: "vllm-grpc-gateway")

  func vllmFinished(_ outcome: VLLMOutcome) {
    upstream = nil
    switch outcome {
    case .failed(let error):
      if let onRouteMissing, error.isMissingRoute {
        self.onRouteMissing = nil
        onRouteMissing()
        return
      }
      if error.countsAgainstUpstream, move(after: error.message) { return }
      call.finish(UpstreamStatus.error(error))
    case .body:
      call.finish(Status(.unavailable, "vLLM answered \(operation.upstreamPath) without an event stream"))
    case .streamEnded:
      if sawEnd {
        call.finish(.ok)
      } else if !move(after: "its event stream ended before it was complete") {
        call.finish(Status(.unavailable, "vLLM's event stream ended before it was complete"))
      }
    }
  }

  var followsDepartures: Bool { migration != nil || responsesMigration != nil }

  /// The upstream is leaving the fleet (ejected, marked down, removed by a reload): the stream
  /// moves before it fails there, if it can; else it stays and may well finish. The continuation
  /// starts first, and only once it has does the stream let go of the upstream.
  func upstreamDeparting(_ upstream: Upstream, reason: String) {
    guard (migration?.upstreams.last ?? responsesMigration?.upstreams.last) == upstream.id, !sawEnd else { return }
    let leaving = self.upstream
    if move(after: "its upstream left the fleet: \(reason)") { leaving?.cancel() }
  }

  /// Carries the generation on on another upstream; false when it cannot (then the call fails
  /// as it would without migration).
  private func move(after failure: String) -> Bool {
    if let responsesMigration { return moveResponses(responsesMigration, after: failure) }
    let detectedAt = NIODeadline.now().uptimeNanoseconds
    guard let next = nextRequest() else { return false }
    move(to: next, after: failure, detectedAt: detectedAt)
    return true
  }

  /// The request that carries the generation on elsewhere, if the policy, the limit, the
  /// deadline, the stream so far and the fleet allow one.
  private func nextRequest() -> (path: String, body: [UInt8])? {
    guard let migration, !call.isFinished, migration.moves < migration.limit,
      migration.progress.cannotContinue == nil, !migration.progress.isFinished,
      context.fleet.serves(migration.model, excluding: migration.upstreams)
    else { return nil }
    if let deadline = call.deadline, deadline <= .now() { return nil }
    do {
      // Nothing sent yet: the same request again; else the one that continues it.
      if migration.progress.tokens == 0 {
        return (
          operation.upstreamPath,
          try UpstreamRequestBody.json(
            from: migration.request, operation: operation, converter: context.toJSON, stream: true)
        )
      }
      return try ContinuationRequest.request(
        from: migration.request, progress: migration.progress, operation: operation, converter: context.toJSON)
    } catch {
      return nil
    }
  }

  private func move(to next: (path: String, body: [UInt8]), after failure: String, detectedAt: UInt64) {
    guard let migration else { return }
    // A chat continued as a completion: its chunks are turned back into chat chunks.
    migration.rewriter.completionsAsChat = next.path != operation.upstreamPath
    migration.moves += 1
    migration.failedAt = detectedAt
    migration.failure = failure
    migration.rewriter.tokensBefore = migration.progress.tokens
    migration.skipsRoleChunk = true
    sawEnd = false
    if let record = call.account as? CallRecord {
      record.migrations += 1
      // The tokens sent so far are completion to the client, though prompt to the next upstream,
      // whose usage counts them all; each move counts those since the last one (an upstream that
      // failed reported no usage).
      let sinceLastMove = migration.progress.tokens - migration.tokensCounted
      migration.tokensCounted = migration.progress.tokens
      record.completionTokens = record.completionTokens.saturatingAdd(sinceLastMove)
      record.promptTokens = record.promptTokens.saturatingSubtract(sinceLastMove)
      record.trace?.streamMoved(after: failure, tokens: migration.progress.tokens)
    }
    upstream = context.startUpstream(
      for: call, path: next.path, body: next.body, handler: self, pacedByReader: true,
      excluding: migration.upstreams)
  }
}

// MARK: Responses streams

extension StreamingUpstreamCall {
  /// What a Responses stream relayed from /v1/responses needs to move. A class, so that the
  /// other streams carry a pointer for it rather than its hundred-odd bytes.
  final class ResponsesMigration {
    let request: [UInt8]
    let model: String
    let limit: Int
    var progress = ResponsesProgress()
    /// Upstreams this call's stream has been on.
    var upstreams: [Int] = []

    init(request: [UInt8], model: String, limit: Int) {
      self.request = request
      self.model = model
      self.limit = limit
    }
  }

  private func prepareResponsesMigration(for request: [UInt8]) {
    guard operation.upstreamPath == "/v1/responses", !context.fleet.isSingle else { return }
    let model = (try? UpstreamRequestBody.topLevelString(field: 1, in: request)) ?? ""
    let limit = context.migration.limit(for: model)
    guard limit > 0, ResponsesContinuation.obstacle(to: request) == nil else { return }
    responsesMigration = ResponsesMigration(request: request, model: model, limit: limit)
  }

  /// vLLM's /v1/responses cannot continue a message: the stream moves to chat completions, where
  /// ResponsesViaChatCall takes it over from what was sent.
  private func moveResponses(_ migration: ResponsesMigration, after failure: String) -> Bool {
    guard !call.isFinished else { return false }
    let moved = ResponsesViaChatCall(call: call, operation: operation, context: context).resume(
      request: migration.request, progress: migration.progress, model: migration.model, limit: migration.limit,
      upstreams: migration.upstreams, after: failure)
    if moved {
      // The call is ResponsesViaChatCall's now, and so is the request that carries it on.
      responsesMigration = nil
      upstream = nil
    }
    return moved
  }
}
