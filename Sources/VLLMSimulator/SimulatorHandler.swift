import Foundation
import NIOCore
import NIOHTTP1
import ProtoJSON

#if canImport(Glibc)
  import Glibc
#endif

/// One HTTP/1.1 connection to the simulator: reads a request, answers it like vLLM, paced by the
/// configuration, with any fault the request asks for.
final class SimulatorHandler: ChannelInboundHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  private let baseConfiguration: SimulatorConfiguration
  private var configuration: SimulatorConfiguration
  private let stats: SimulatorStats
  private let engine: SimulatorEngine
  private let stepClocks: EngineStepClocks
  private var head: HTTPRequestHead? = nil
  private var body: [UInt8] = []
  /// The answer being sent, piece by piece; nil when idle.
  private var emission: Emission? = nil
  /// Set by the "close_next" fault: the next request on this connection is not processed.
  private var closesOnNextRequest = false
  /// Once closing, nothing more is read.
  private var isClosing = false

  private struct Emission {
    var pieces: [ByteBuffer]
    var next = 0
    /// The first piece's timer: its time to first token and prefill are its own.
    var timer: Scheduled<Void>? = nil
    /// The engine step clock that paces the pieces after the first; nil while none does (before
    /// the first piece, while waiting for the socket, after the last piece).
    var stepClock: EngineStepClock? = nil
    /// What happens after the pieces: end the response, close the connection, or go silent.
    var ending: Ending
    /// Whether each piece gets its TokenStamp placeholders stamped as it is written.
    var stamped = false
    /// Set while the client's socket is full: the next piece waits for it to drain, as a real
    /// server's writer waits (uvicorn's drain), so a client that stops reading holds memory nowhere.
    var waitsForWritable = false
    /// The generation's slot in the engine, given back when the emission ends; nil for answers
    /// the engine does not run (audio, silence before the head).
    var run: EngineRun? = nil
  }

  private struct EngineRun {
    var id: Int
    /// Tokens the whole answer carries, and the finish reason it ends with.
    var generatedTokens: Int
    var finishReason: String
    /// The delay before the first piece, before any prefill cost.
    var firstDelay: TimeAmount
    var prefillPerToken: Double
  }

  private enum Ending {
    /// The end of the response; the connection stays open for the next request.
    case end
    /// A clean close of the connection (FIN).
    case close
    /// A TCP reset, as a crashed server's kernel sends.
    case reset
    /// Silence, until the client gives up.
    case stall
  }

  init(
    configuration: SimulatorConfiguration, stats: SimulatorStats, engine: SimulatorEngine,
    stepClocks: EngineStepClocks
  ) {
    self.baseConfiguration = configuration
    self.configuration = configuration
    self.stats = stats
    self.engine = engine
    self.stepClocks = stepClocks
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard !isClosing else { return }
    switch unwrapInboundIn(data) {
    case .head(let head):
      if closesOnNextRequest {
        // As uvicorn closing a keep-alive connection it saw idle: the request is never read.
        stats.closedUnprocessed()
        reset(context)
        return
      }
      self.head = head
      body.removeAll(keepingCapacity: true)
    case .body(var buffer):
      body.append(contentsOf: buffer.readBytes(length: buffer.readableBytes) ?? [])
    case .end:
      guard let head else { return }
      self.head = nil
      route(context: context, head: head, body: body)
    }
  }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    if context.channel.isWritable, var emission, emission.waitsForWritable {
      // The piece it waited for was due: it goes now, and the generation rejoins the step clock.
      emission.waitsForWritable = false
      self.emission = emission
      emitNext(context)
    }
    context.fireChannelWritabilityChanged()
  }

  func channelInactive(context: ChannelHandlerContext) {
    if let emission {
      emission.timer?.cancel()
      end(emission, aborted: true)
    }
    context.fireChannelInactive()
  }

  // MARK: Routing

  private func route(context: ChannelHandlerContext, head: HTTPRequestHead, body: [UInt8]) {
    configuration = baseConfiguration
    let path = String(head.uri.prefix { $0 != "?" })
    switch (head.method, path) {
    case (.GET, "/health"), (.GET, "/ping"):
      if engine.isHealthy {
        respond(context, status: .ok, body: [], contentType: nil)
      } else {
        respond(context, status: .serviceUnavailable, body: [], contentType: nil)
      }
    case (.POST, "/admin/health"):
      guard let healthy = AdminHealth.healthy(from: body) else {
        respond(
          context, status: .badRequest,
          body: ErrorBody.standard(
            status: 400, message: "expected {\"healthy\": true or false}", type: "Bad Request", param: "body.healthy"))
        return
      }
      engine.isHealthy = healthy
      respond(context, status: .ok, body: Array("{}".utf8))
    case (.GET, "/version"):
      respond(context, status: .ok, body: Array("{\"version\":\"0.32.0-sim\"}".utf8))
    case (.GET, "/stats"):
      respond(context, status: .ok, body: statsBody())
    case (.POST, "/stats/reset"):
      stats.reset()
      respond(context, status: .ok, body: Array("{}".utf8))
    case (.GET, "/v1/models"):
      respond(
        context, status: .ok, body: ModelList.body(models: engine.models, maxModelLength: configuration.maxModelLength))
    case (.GET, "/metrics"):
      respond(context, status: .ok, body: MetricsPage.render(engine.snapshot), contentType: MetricsPage.contentType)
    case (.POST, "/admin/models"):
      guard let models = ModelList.replacement(from: body) else {
        respond(
          context, status: .badRequest,
          body: ErrorBody.standard(
            status: 400, message: "expected {\"models\": [names]} with at least one name", type: "Bad Request",
            param: "body.models"))
        return
      }
      engine.replaceModels(models)
      respond(context, status: .ok, body: ModelList.body(models: models, maxModelLength: configuration.maxModelLength))
    case (.POST, "/v1/chat/completions"), (.POST, "/v1/completions"):
      generate(context: context, path: path, head: head, body: body)
    case (.POST, "/v1/responses") where configuration.servesResponses:
      generate(context: context, path: path, head: head, body: body)
    case (.POST, "/v1/embeddings"), (.POST, "/rerank"), (.POST, "/v1/score"):
      pool(context: context, path: path, head: head, body: body)
    case (.POST, "/v1/rerank") where configuration.servesV1Rerank:
      pool(context: context, path: path, head: head, body: body)
    case (.POST, "/v1/audio/transcriptions"), (.POST, "/v1/audio/translations"):
      let contentType = head.headers.first(name: "content-type") ?? ""
      stats.started(
        path: path, body: AudioAnswer.describe(body: body, contentType: contentType),
        headers: head.headers.map { ($0.name.lowercased(), $0.value) })
      let answer = AudioAnswer.answer(
        path: path, body: body, contentType: head.headers.first(name: "content-type") ?? "", models: engine.models)
      switch answer {
      case .json(let status, let reply):
        stats.finished(aborted: false)
        respond(context, status: status, body: reply)
      case .stream(let events):
        sendHead(context, contentType: "text/event-stream; charset=utf-8", length: nil, streaming: true)
        let pieces = events.map { event -> ByteBuffer in
          var buffer = context.channel.allocator.buffer(capacity: event.count + 8)
          buffer.writeBytes(sse(event))
          return buffer
        }
        emit(context, Emission(pieces: pieces, ending: .end), firstDelay: configuration.timeToFirstToken)
      }
    case (_, "/v1/chat/completions"), (_, "/v1/completions"), (_, "/v1/models"):
      respond(context, status: .methodNotAllowed, body: ErrorBody.methodNotAllowed)
    default:
      stats.unserved(path: path)
      respond(context, status: .notFound, body: ErrorBody.notFound)
    }
  }

  private func generate(context: ChannelHandlerContext, path: String, head: HTTPRequestHead, body: [UInt8]) {
    let request = SimulatedRequest(body: body)
    if request?.fault?.kind == .resetBeforeHead {
      // As a server whose socket is reset with the request unread: it never started.
      stats.closedUnprocessed()
      reset(context)
      return
    }
    stats.started(path: path, body: body, headers: head.headers.map { ($0.name.lowercased(), $0.value) })
    guard let request else {
      stats.finished(aborted: false)
      respond(
        context, status: .badRequest,
        body: ErrorBody.standard(status: 400, message: "JSON decode error", type: "Bad Request", param: "body"))
      return
    }
    if let pace = request.tokensPerSecond { configuration.tokensPerSecond = pace }
    if let ttft = request.timeToFirstTokenMilliseconds {
      configuration.timeToFirstToken = .nanoseconds(Int64(ttft * 1_000_000))
    }
    let models = engine.models
    if let model = request.model, !model.isEmpty, !models.contains(model) {
      stats.finished(aborted: false)
      respond(
        context, status: .notFound,
        body: ErrorBody.standard(
          status: 404,
          message: "The model `\(model)` does not exist. Valid aliases: \(models.joined(separator: ", ")).",
          param: "model"))
      return
    }
    if let fault = request.fault {
      switch fault.kind {
      case .httpError:
        stats.finished(aborted: false)
        let body =
          fault.status == 401
          ? ErrorBody.unauthorized : ErrorBody.standard(status: fault.status, message: fault.message)
        respond(context, status: HTTPResponseStatus(statusCode: fault.status), body: body)
        return
      case .detail:
        stats.finished(aborted: false)
        respond(context, status: HTTPResponseStatus(statusCode: fault.status), body: ErrorBody.notFound)
        return
      case .error200 where !request.stream:
        stats.finished(aborted: false)
        respond(context, status: .ok, body: ErrorBody.standard(status: fault.status, message: fault.message))
        return
      case .dropBeforeHead:
        // As a server that read the request and died: a clean close, no answer.
        stats.finished(aborted: false)
        isClosing = true
        context.close(promise: nil)
        return
      case .stallBeforeHead:
        // In flight until the client closes the connection, which counts it as aborted.
        emission = Emission(pieces: [], ending: .stall)
        return
      case .closeNext:
        closesOnNextRequest = true
      default:
        break
      }
    }
    let count = min(request.maxTokens ?? configuration.defaultMaxTokens, configuration.maxModelLength)
    let finishReason = request.maxTokens != nil ? "length" : "stop"
    // A continuation answers with the rest of the same answer, and its prompt holds the tokens
    // it continues after.
    let skipped = request.continuedTokens
    let choices = (0..<request.choices).map { choice in
      request.stamp
        ? Array(repeating: TokenStamp.placeholder, count: count)
        : Array(Generation.tokens(for: request.promptText, count: skipped + count, choice: choice).dropFirst(skipped))
    }
    let created = Int64(Date().timeIntervalSince1970)
    let promptTokens = Generation.promptTokens(request.promptText) + skipped
    let model = request.model.flatMap { $0.isEmpty ? nil : $0 } ?? models[0]
    let job = SimulatorEngine.Job(
      model: model, promptTokens: promptTokens,
      blockHashes: engine.cachesPrefixes ? PromptBlocks.hashes(model: model, prompt: request.promptText) : [],
      heldTokens: promptTokens + count * choices.count)
    func engineRun(firstDelay: TimeAmount) -> EngineRun {
      EngineRun(
        id: -1, generatedTokens: count * choices.count, finishReason: finishReason, firstDelay: firstDelay,
        prefillPerToken: configuration.prefillMillisecondsPerToken)
    }

    if !request.stream {
      let answer: [UInt8]
      switch path {
      case "/v1/chat/completions":
        answer = ChatBodies(created: created, model: model, promptTokens: promptTokens)
          .completion(choices: choices, finishReason: finishReason)
      case "/v1/completions":
        answer = CompletionBodies(created: created, model: model, promptTokens: promptTokens)
          .completion(choices: choices, finishReason: finishReason)
      default:
        answer = ResponsesBodies(
          created: created, model: model, promptTokens: promptTokens, maxOutputTokens: request.maxTokens
        ).response(
          status: finishReason == "length" ? "incomplete" : "completed", text: choices[0].joined(),
          outputTokens: count, incomplete: finishReason == "length")
      }
      let ending: Ending
      var body = answer
      switch request.fault?.kind {
      case .drop: ending = .close
      case .stall: ending = .stall
      case .reset: ending = .reset
      case .malformedJSON:
        ending = .end
        body = Array(answer.prefix(answer.count / 2)) + Array(repeating: UInt8(ascii: " "), count: answer.count / 2 + 1)
        body[body.count - 1] = UInt8(ascii: "}")
      default: ending = .end
      }
      var buffer = context.channel.allocator.buffer(capacity: body.count)
      buffer.writeBytes(body)
      // A non-streamed answer comes once generation is done.
      let delay = configuration.timeToFirstToken + configuration.interTokenDelay * Int64(max(count - 1, 0))
      sendHead(context, contentType: "application/json", length: body.count, streaming: false)
      run(
        context, job,
        Emission(
          pieces: ending == .end ? [buffer] : [], ending: ending, stamped: request.stamp,
          run: engineRun(firstDelay: delay)))
      return
    }

    var events: [[UInt8]]
    switch path {
    case "/v1/chat/completions":
      events = chatEvents(
        request, choices, finishReason, ChatBodies(created: created, model: model, promptTokens: promptTokens))
    case "/v1/completions":
      events = completionEvents(
        request, choices, finishReason, CompletionBodies(created: created, model: model, promptTokens: promptTokens))
    default:
      let bodies = ResponsesBodies(
        created: created, model: model, promptTokens: promptTokens, maxOutputTokens: request.maxTokens)
      events = bodies.events(tokens: choices[0], incomplete: finishReason == "length").map { name, data in
        Array("event: \(name)\ndata: ".utf8) + data + Array("\n\n".utf8)
      }
    }
    var ending = Ending.end
    // A fault `after` chunks stands for a replica failing at that point of the generation: a
    // continuation that starts beyond it has already passed it.
    let leadingEvents = path == "/v1/chat/completions" ? request.choices : 0  // role chunks
    if let fault = request.fault, skipped == 0 || fault.after > skipped + leadingEvents {
      let cut = min(fault.after - skipped, events.count)
      switch fault.kind {
      case .streamError, .error200:
        events = Array(events.prefix(cut)) + [sse(ErrorBody.streamEvent(status: fault.status, message: fault.message))]
        if path != "/v1/responses" { events.append(sse(Array("[DONE]".utf8))) }
      case .drop:
        events = Array(events.prefix(cut))
        ending = .close
      case .stall:
        events = Array(events.prefix(cut))
        ending = .stall
      case .truncate:
        events = Array(events.prefix(cut))
      case .reset:
        events = Array(events.prefix(cut))
        ending = .reset
      case .malformedJSON:
        events = Array(events.prefix(cut)) + [sse(Array("{\"id\": \"chatcmpl-broken\", \"choices\": [{".utf8))]
        if path != "/v1/responses" { events.append(sse(Array("[DONE]".utf8))) }
      case .truncatedEvent:
        let half = cut < events.count ? Array(events[cut].prefix(events[cut].count / 2)) : Array("data: {\"id".utf8)
        events = Array(events.prefix(cut)) + [half]
      default:
        break
      }
    }
    sendHead(context, contentType: "text/event-stream; charset=utf-8", length: nil, streaming: true)
    let pieces = events.map { event -> ByteBuffer in
      var buffer = context.channel.allocator.buffer(capacity: event.count)
      buffer.writeBytes(event)
      return buffer
    }
    run(
      context, job,
      Emission(
        pieces: pieces, ending: ending, stamped: request.stamp,
        run: engineRun(firstDelay: configuration.timeToFirstToken)))
  }

  /// Embeddings, rerank and score: one JSON answer, no pacing.
  private func pool(context: ChannelHandlerContext, path: String, head: HTTPRequestHead, body: [UInt8]) {
    stats.started(path: path, body: body, headers: head.headers.map { ($0.name.lowercased(), $0.value) })
    defer { stats.finished(aborted: false) }
    guard let request = SimulatedRequest(body: body) else {
      respond(
        context, status: .badRequest,
        body: ErrorBody.standard(status: 400, message: "JSON decode error", type: "Bad Request", param: "body"))
      return
    }
    let models = engine.models
    if let model = request.model, !model.isEmpty, !models.contains(model) {
      let message = "The model `\(model)` does not exist."
      respond(
        context, status: .notFound,
        body: ErrorBody.standard(status: 404, message: message, param: path == "/v1/embeddings" ? "model" : nil))
      return
    }
    if let fault = request.fault, fault.kind == .httpError {
      respond(
        context, status: HTTPResponseStatus(statusCode: fault.status),
        body: ErrorBody.standard(status: fault.status, message: fault.message))
      return
    }
    let object = request.object
    let model = request.model.flatMap { $0.isEmpty ? nil : $0 } ?? models[0]
    switch path {
    case "/v1/embeddings":
      let inputs: [String]
      switch object["input"] {
      case let text as String: inputs = [text]
      case let texts as [String]: inputs = texts
      case let ids as [Int]: inputs = [ids.map(String.init).joined(separator: " ")]
      case let lists as [[Int]]: inputs = lists.map { $0.map(String.init).joined(separator: " ") }
      default:
        respond(
          context, status: .badRequest,
          body: ErrorBody.standard(status: 400, message: "input is required", type: "Bad Request", param: "body.input"))
        return
      }
      if let dimensions = object["dimensions"] as? Int {
        respond(
          context, status: .badRequest,
          body: ErrorBody.standard(
            status: 400,
            message:
              "Model \"\(model)\" does not support matryoshka representation, changing output dimensions to \(dimensions) will lead to poor results."
          ))
        return
      }
      let base64 = (object["encoding_format"] as? String) == "base64"
      respond(
        context, status: .ok,
        body: PoolingBodies.embeddings(
          inputs: inputs, model: model, dimensions: configuration.embeddingDimensions, base64: base64))
    case "/v1/score":
      let first = object["text_1"] as? [String] ?? [(object["text_1"] as? String) ?? ""]
      let second = object["text_2"] as? [String] ?? [(object["text_2"] as? String) ?? ""]
      let pairs = first.count == 1 ? second.map { (first[0], $0) } : Array(zip(first, second))
      respond(context, status: .ok, body: PoolingBodies.scores(pairs: pairs, model: model))
    default:
      guard let query = object["query"] as? String else {
        respond(
          context, status: .badRequest,
          body: ErrorBody.standard(status: 400, message: "Field required", type: "Bad Request", param: "body.query"))
        return
      }
      let documents = object["documents"] as? [String] ?? []
      respond(
        context, status: .ok,
        body: PoolingBodies.rerank(query: query, documents: documents, topN: object["top_n"] as? Int, model: model))
    }
  }

  private func chatEvents(_ request: SimulatedRequest, _ choices: [[String]], _ finish: String, _ bodies: ChatBodies)
    -> [[UInt8]]
  {
    let roleContent = request.stamp ? TokenStamp.placeholder : ""
    var events = choices.indices.map { sse(bodies.roleChunk(choice: $0, content: roleContent)) }
    let total = choices.map(\.count).reduce(0, +)
    var produced = 0
    for position in 0..<(choices.map(\.count).max() ?? 0) {
      for (index, tokens) in choices.enumerated() where position < tokens.count {
        produced += 1
        let last = position == tokens.count - 1
        events.append(
          sse(
            bodies.contentChunk(
              choice: index, token: tokens[position], finishReason: last ? finish : nil,
              fingerprint: last && !request.includeUsage && index == choices.count - 1,
              usage: request.continuousUsage ? produced : nil)))
      }
    }
    if request.includeUsage { events.append(sse(bodies.usageChunk(completionTokens: total))) }
    events.append(sse(Array("[DONE]".utf8)))
    return events
  }

  private func completionEvents(
    _ request: SimulatedRequest, _ choices: [[String]], _ finish: String, _ bodies: CompletionBodies
  ) -> [[UInt8]] {
    var events: [[UInt8]] = []
    for position in 0..<(choices.map(\.count).max() ?? 0) {
      for (index, tokens) in choices.enumerated() where position < tokens.count {
        events.append(
          sse(
            bodies.chunk(
              choice: index, token: tokens[position], finishReason: position == tokens.count - 1 ? finish : nil)))
      }
    }
    if request.includeUsage {
      events.append(sse(bodies.usageChunk(completionTokens: choices.map(\.count).reduce(0, +))))
    }
    events.append(sse(Array("[DONE]".utf8)))
    return events
  }

  private func sse(_ data: [UInt8]) -> [UInt8] {
    Array("data: ".utf8) + data + Array("\n\n".utf8)
  }

  // MARK: Writing

  private func sendHead(_ context: ChannelHandlerContext, contentType: String, length: Int?, streaming: Bool) {
    var headers = HTTPHeaders()
    headers.add(name: "content-type", value: contentType)
    headers.add(name: "server", value: "vllm-sim")
    if let length { headers.add(name: "content-length", value: String(length)) }
    context.write(
      wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
    if streaming { context.flush() }
  }

  /// Hands a generation to the engine: it is emitted once it runs, after its time to first token
  /// and the prefill of the prompt tokens the prefix cache did not have. Until then it waits, with
  /// its head sent, as a vLLM request waits for a slot in the batch.
  private func run(_ context: ChannelHandlerContext, _ job: SimulatorEngine.Job, _ emission: Emission) {
    var emission = emission
    let loop = context.eventLoop
    let handler = NIOLoopBound((self, context), eventLoop: loop)
    let (id, admission) = engine.submit(job) { admission in
      loop.execute {
        let (handler, context) = handler.value
        handler.admitted(context, admission)
      }
    }
    emission.run?.id = id
    self.emission = emission
    if let admission { admitted(context, admission) }
  }

  private func admitted(_ context: ChannelHandlerContext, _ admission: SimulatorEngine.Admission) {
    // The client may have gone, and the slot been given back, before the admission got here.
    guard let emission, let run = emission.run, run.id == admission.id else { return }
    let prefill = TimeAmount.nanoseconds(Int64(run.prefillPerToken * 1_000_000 * Double(admission.computedTokens)))
    emit(context, emission, firstDelay: run.firstDelay + prefill)
  }

  /// The answer is over: the request counts as completed or aborted, and its engine slot goes to
  /// the next waiting generation.
  private func end(_ emission: Emission, aborted: Bool) {
    self.emission = nil
    emission.stepClock?.leave(ObjectIdentifier(self))
    stats.finished(aborted: aborted)
    guard let run = emission.run else { return }
    // A client that leaves mid-answer got only the pieces written so far.
    let sent = emission.pieces.isEmpty ? 0 : run.generatedTokens * emission.next / emission.pieces.count
    engine.finish(
      run.id, generatedTokens: aborted ? sent : run.generatedTokens, finishReason: aborted ? "abort" : run.finishReason)
  }

  private func emit(_ context: ChannelHandlerContext, _ emission: Emission, firstDelay: TimeAmount) {
    self.emission = emission
    if firstDelay > .zero {
      self.emission?.timer = context.eventLoop.assumeIsolated().scheduleTask(in: firstDelay) {
        self.emitNext(context)
      }
    } else {
      emitNext(context)
    }
  }

  /// Writes the next piece (every piece, unpaced), then ends the answer or leaves the rest to
  /// the engine step clock.
  private func emitNext(_ context: ChannelHandlerContext) {
    guard var emission else { return }
    let delay = configuration.interTokenDelay
    // Without pacing, everything goes in one write.
    repeat {
      guard emission.next < emission.pieces.count else { break }
      guard context.channel.isWritable else {
        guard self.emission != nil, context.channel.isActive else { return }
        // Off the step clock while it waits: a step would only find the socket full again.
        emission.stepClock?.leave(ObjectIdentifier(self))
        emission.stepClock = nil
        emission.waitsForWritable = true
        self.emission = emission
        context.flush()
        return
      }
      var piece = emission.pieces[emission.next]
      if emission.stamped { TokenStamp.stamp(&piece) }
      context.write(wrapOutboundOut(.body(.byteBuffer(piece))), promise: nil)
      emission.next += 1
    } while delay == .zero
    context.flush()
    // A write can fail and close the connection at once; channelInactive has then counted this
    // request as aborted, and it must not also count as completed.
    guard self.emission != nil, context.channel.isActive else { return }
    if emission.next < emission.pieces.count {
      emission.timer = nil
      if emission.stepClock == nil {
        let clock = stepClocks.clock(on: context.eventLoop, interTokenDelay: delay)
        clock.join(ObjectIdentifier(self), lastPiece: .now()) { self.emitNext(context) }
        emission.stepClock = clock
      }
      self.emission = emission
      return
    }
    emission.stepClock?.leave(ObjectIdentifier(self))
    emission.stepClock = nil
    switch emission.ending {
    case .end:
      end(emission, aborted: false)
      context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    case .close:
      end(emission, aborted: false)
      context.close(promise: nil)
    case .reset:
      end(emission, aborted: false)
      reset(context)
    case .stall:
      // Silence: the request stays open until the client gives up.
      emission.timer = nil
      self.emission = emission
    }
  }

  /// Closes the connection with a TCP reset (SO_LINGER 0) rather than a FIN.
  private func reset(_ context: ChannelHandlerContext) {
    isClosing = true
    // On the channel's own loop the option is set at once, before the close.
    if let socket = context.channel as? any SocketOptionProvider {
      _ = socket.setSoLinger(linger(l_onoff: 1, l_linger: 0))
    }
    context.close(promise: nil)
  }

  private func respond(
    _ context: ChannelHandlerContext, status: HTTPResponseStatus, body: [UInt8],
    contentType: String? = "application/json"
  ) {
    var headers = HTTPHeaders()
    if let contentType { headers.add(name: "content-type", value: contentType) }
    headers.add(name: "content-length", value: String(body.count))
    context.write(
      wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
    var buffer = context.channel.allocator.buffer(capacity: body.count)
    buffer.writeBytes(body)
    context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
    context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
  }

  private func statsBody() -> [UInt8] {
    let counts = stats.snapshot
    var json = JSONWriter()
    json.beginObject()
    json.key("requests")
    json.int(Int64(counts.requests))
    json.key("completed")
    json.int(Int64(counts.completed))
    json.key("aborted")
    json.int(Int64(counts.aborted))
    json.key("in_flight")
    json.int(Int64(counts.inFlight))
    json.key("closed_unprocessed")
    json.int(Int64(counts.closedUnprocessed))
    json.key("by_path")
    json.beginObject()
    for (path, count) in counts.byPath.sorted(by: { $0.key < $1.key }) {
      json.key(path)
      json.int(Int64(count))
    }
    json.endObject()
    json.key("last_request")
    if counts.lastRequest.isEmpty { json.null() } else { json.raw(counts.lastRequest) }
    json.key("last_headers")
    json.beginObject()
    for (name, value) in counts.lastHeaders {
      json.key(name)
      json.string(value)
    }
    json.endObject()
    json.endObject()
    return json.bytes
  }
}
