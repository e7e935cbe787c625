import Fleet
import GRPCServer
import Tracing
import VLLMClient

/// vllmgateway.v1.VLLMService: every RPC, each one vLLM operation.
public struct VLLMService: ServiceProvider {
  public let serviceName = "vllmgateway.v1.VLLMService"
  private let context: GatewayContext
  /// When set, every method needs one of these keys.
  private let keys: ClientKeys?
  private let accessLog: AccessLog?
  private let metrics: GatewayMetrics?
  /// When set, every call is traced; nil (tracing off) costs nothing.
  private let tracer: (any Tracer)?

  public init(
    fleet: Fleet, responsesMode: ResponsesMode = .auto, keys: ClientKeys? = nil, accessLog: AccessLog? = nil,
    metrics: GatewayMetrics? = nil, tracer: (any Tracer)? = nil, migration: StreamMigrationPolicy = .init()
  ) {
    self.context = GatewayContext(fleet: fleet, responsesMode: responsesMode, migration: migration)
    self.keys = keys
    self.accessLog = accessLog
    self.metrics = metrics
    self.tracer = tracer
  }

  /// One upstream.
  public init(client: VLLMClient, responsesMode: ResponsesMode = .auto) {
    self.init(fleet: Fleet(single: client), responsesMode: responsesMode)
  }

  static let operations: [Operation] = [
    Operation(
      rpc: "CreateChatCompletion", kind: .unary, upstreamPath: "/v1/chat/completions",
      requestType: "ChatCompletionRequest", responseType: "ChatCompletion"),
    Operation(
      rpc: "StreamChatCompletion", kind: .serverStreaming, upstreamPath: "/v1/chat/completions",
      requestType: "ChatCompletionRequest", responseType: "ChatCompletionChunk", streamOptionsField: 15),
    Operation(
      rpc: "CreateCompletion", kind: .unary, upstreamPath: "/v1/completions", requestType: "CompletionRequest",
      responseType: "Completion"),
    Operation(
      rpc: "StreamCompletion", kind: .serverStreaming, upstreamPath: "/v1/completions",
      requestType: "CompletionRequest", responseType: "Completion", streamOptionsField: 17),
    Operation(
      rpc: "CreateResponse", kind: .unary, upstreamPath: "/v1/responses", requestType: "ResponseRequest",
      responseType: "Response"),
    Operation(
      rpc: "StreamResponse", kind: .serverStreaming, upstreamPath: "/v1/responses", requestType: "ResponseRequest",
      responseType: "ResponseStreamEvent",
      terminalEvents: ["response.completed", "response.incomplete", "response.failed"]),
    // vLLM answers in base64 (little-endian float32), which goes straight into packed floats.
    Operation(
      rpc: "CreateEmbedding", kind: .unary, upstreamPath: "/v1/embeddings", requestType: "EmbeddingRequest",
      responseType: "EmbeddingResponse", upstreamOverrides: [("encoding_format", "\"base64\"")]),
    Operation(
      rpc: "Score", kind: .unary, upstreamPath: "/v1/score", requestType: "ScoreRequest",
      responseType: "ScoreResponse"),
    Operation(
      rpc: "ListModels", kind: .unary, upstreamPath: "/v1/models", requestType: "ListModelsRequest",
      responseType: "ListModelsResponse", isGet: true),
  ]

  static let audioOperations: [Operation] = [
    ("Transcription", "/v1/audio/transcriptions"), ("Translation", "/v1/audio/translations"),
  ].flatMap { name, path in
    [
      Operation(
        rpc: "Create" + name, kind: .unary, upstreamPath: path, requestType: "TranscriptionRequest",
        responseType: "Transcription", body: .transcriptionForm, acceptsPlainText: true),
      Operation(
        rpc: "Stream" + name, kind: .serverStreaming, upstreamPath: path, requestType: "TranscriptionRequest",
        responseType: "TranscriptionChunk", body: .transcriptionForm),
    ]
  }

  static let rerank = Operation(
    rpc: "Rerank", kind: .unary, upstreamPath: "/v1/rerank", requestType: "RerankRequest",
    responseType: "RerankResponse")

  public var routes: [Route] {
    guard keys != nil || accessLog != nil || metrics != nil || tracer != nil else { return openRoutes }
    let keys = self.keys
    let accessLog = self.accessLog
    let metrics = self.metrics
    let tracer = self.tracer
    // Each call gets its record first (so even a refused call has its log line), then the key gate.
    return openRoutes.map { route in
      let recording = MethodRecording(
        method: route.path, accessLog: accessLog, metrics: metrics?.method(route.path), tracer: tracer)
      return route.gated { call in
        let record = CallRecord(call: call, recording: recording)
        call.account = record
        return keys?.authenticate(call)
      }
    }
  }

  private var openRoutes: [Route] {
    let context = self.context
    var routes = (Self.operations + Self.audioOperations).map { operation in
      let operation = operation.resolved(in: context.toJSON.schema)
      // What each call asks of its operation, decided once here rather than by comparing
      // Strings per call.
      let isResponses = operation.upstreamPath == "/v1/responses"
      let isModelList = operation.upstreamPath == "/v1/models"
      let isSubtitleCandidate = operation.body == .transcriptionForm && operation.kind == .unary
      return Route(
        path: operation.rpc, isUnary: operation.kind == .unary,
        kind: .singleRequest { call, request in
          if isSubtitleCandidate,
            let format = SubtitleTranscriptionCall.requestedFormat(request)
          {
            SubtitleTranscriptionCall(call: call, operation: operation, context: context, format: format)
              .start(request: request)
            return
          }
          if isResponses && context.responsesViaChat {
            ResponsesViaChatCall(call: call, operation: operation, context: context).start(request: request)
            return
          }
          // For the Responses RPCs in auto mode: an upstream without the route is remembered, and
          // this call and every later one go through chat completions.
          let fallBack: (() -> Void)? =
            isResponses && context.responsesMode == .auto
            ? {
              context.responsesMissing.withLockedValue { $0 = true }
              ResponsesViaChatCall(call: call, operation: operation, context: context).start(request: request)
            } : nil
          if isModelList && !context.fleet.isSingle {
            // The fleet's models, merged from what each upstream listed last: one upstream down
            // never makes it fail.
            UnaryUpstreamCall(call: call, operation: operation, context: context).vllmFinished(
              .body(context.fleet.mergedModelList(), contentType: "application/json", receivedAt: 0))
            return
          }
          switch operation.kind {
          case .unary:
            let upstreamCall = UnaryUpstreamCall(call: call, operation: operation, context: context)
            upstreamCall.onRouteMissing = fallBack
            upstreamCall.start(request: request)
          case .serverStreaming:
            let upstreamCall = StreamingUpstreamCall(call: call, operation: operation, context: context)
            upstreamCall.onRouteMissing = fallBack
            upstreamCall.start(request: request)
          }
        })
    }
    let createTranscription = Self.audioOperations[0]
    routes.append(
      Route.streaming("/vllmgateway.v1.VLLMService/UploadTranscription") { call in
        TranscriptionUploadHandler(call: call, operation: createTranscription, context: context)
      })
    routes.append(
      Route.unary(Self.rerank.rpc) { call, request in
        RerankCall(call: call, operation: Self.rerank, context: context).start(request: request)
      })
    routes += Self.missingFromVLLM.map { method, what in
      Route.unary("/vllmgateway.v1.VLLMService/" + method) { call, _ in
        call.finish(Status(.unimplemented, "vLLM does not provide \(what)"))
      }
    }
    return routes
  }

  /// Operations of the OpenAI API that vLLM lacks, and what to call them in the error.
  static let missingFromVLLM: [(String, String)] = [
    ("CreateImage", "image generation"), ("CreateSpeech", "speech synthesis (text to speech)"),
    ("UploadFile", "a files API"), ("ListFiles", "a files API"), ("CreateBatch", "a batch API"),
  ]
}
