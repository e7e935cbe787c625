import GRPCServer
import Tracing
import VLLMClient

/// A call's spans while tracing is on: a server span, child of the caller's W3C `traceparent` (or
/// the root of a new trace), and a client span for its request to vLLM, whose context goes on to
/// vLLM as `traceparent`. Attributes follow OpenTelemetry's RPC and GenAI conventions. Lives on
/// the call's event loop, like the call's record.
final class CallTrace {
  private let tracer: any Tracer
  private let server: any Span
  private var upstream: (any Span)? = nil
  private var finishReasons: [String] = []
  /// The trace's id, 32 hex digits: for the access log.
  let traceID: String?

  init(tracer: any Tracer, call: ServerCall) {
    self.tracer = tracer
    var parent = ServiceContext.topLevel
    // Only the trace context is handed over: a malformed traceparent is logged with its carrier.
    tracer.extract(TraceContextHeaders(of: call), into: &parent, using: TraceContextHeaders.Extractor())
    let method = call.path.hasPrefix("/") ? String(call.path.dropFirst()) : call.path
    server = tracer.startSpan(method, context: parent, ofKind: .server)
    let parts = method.split(separator: "/", maxSplits: 1)
    server.updateAttributes { attributes in
      attributes["rpc.system"] = "grpc"
      if parts.count == 2 {
        attributes["rpc.service"] = String(parts[0])
        attributes["rpc.method"] = String(parts[1])
      }
    }
    var carrier = TraceContextHeaders()
    tracer.inject(server.context, into: &carrier, using: TraceContextHeaders.Injector())
    traceID = carrier.traceparent.flatMap(CallRecord.traceID(of:))
  }

  /// Starts the span of the request to vLLM and returns the headers that carry it there.
  func startUpstream(path: String, model: String) -> [(String, String)] {
    if let left = upstream {
      // A stream that moved off an upstream still running its request (which was leaving the fleet).
      left.setStatus(SpanStatus(code: .error, message: "the call moved to another upstream"))
      left.end()
    }
    let operation = Self.operationName(path: path)
    let span = tracer.startSpan(
      model.isEmpty ? operation : "\(operation) \(model)", context: server.context, ofKind: .client)
    span.updateAttributes { attributes in
      attributes["gen_ai.operation.name"] = operation
      attributes["gen_ai.provider.name"] = "vllm"
      if !model.isEmpty { attributes["gen_ai.request.model"] = model }
      attributes["url.path"] = path
    }
    upstream = span
    var carrier = TraceContextHeaders()
    tracer.inject(span.context, into: &carrier, using: TraceContextHeaders.Injector())
    return carrier.headers
  }

  func routed(to upstreamName: String) {
    upstream?.attributes["server.address"] = upstreamName
  }

  /// Notes the finish reasons an answer or event carries (`"finish_reason":"stop"`).
  func noteFinishReasons(in json: [UInt8]) {
    guard upstream != nil else { return }
    finishReasons.append(contentsOf: FinishReasons.find(in: json))
  }

  func upstreamFinished(_ outcome: VLLMOutcome, usage: TokenUsage) {
    guard let span = upstream else { return }
    upstream = nil
    let reasons = finishReasons
    span.updateAttributes { attributes in
      attributes["gen_ai.usage.input_tokens"] = usage.prompt
      attributes["gen_ai.usage.output_tokens"] = usage.completion
      if !reasons.isEmpty { attributes["gen_ai.response.finish_reasons"] = reasons }
    }
    if case .failed(let error) = outcome {
      span.attributes["error.type"] = error.httpStatus > 0 ? String(error.httpStatus) : "\(error.kind)"
      span.setStatus(SpanStatus(code: .error, message: error.message))
    }
    span.end()
  }

  /// The stream moved to another upstream after `failure`, with `tokens` generated before.
  func streamMoved(after failure: String, tokens: Int) {
    server.addEvent(
      SpanEvent(
        name: "vllm_grpc_gateway.stream_moved",
        attributes: ["error.message": .string(failure), "gen_ai.usage.output_tokens": .int64(Int64(tokens))]))
  }

  /// The call ended with `code`: the server span ends (and an upstream span still open with it).
  func ended(_ code: Status.Code) {
    if let upstream {
      upstream.setStatus(SpanStatus(code: .error, message: "the call ended first"))
      upstream.end()
      self.upstream = nil
    }
    server.attributes["rpc.grpc.status_code"] = Int(code.rawValue)
    if code != .ok {
      server.attributes["error.type"] = code.name
      server.setStatus(SpanStatus(code: .error, message: code.name))
    }
    server.end()
  }

  /// GenAI's operation names where one fits (`chat`, `text_completion`, `embeddings`), else the
  /// path's last part.
  static func operationName(path: String) -> String {
    switch path {
    case "/v1/chat/completions", "/v1/responses": "chat"
    case "/v1/completions": "text_completion"
    case "/v1/embeddings": "embeddings"
    default: String(path.split(separator: "/").last ?? "request")
    }
  }
}

/// `traceparent` and `tracestate`, the W3C trace context, between metadata and HTTP headers.
struct TraceContextHeaders: Sendable {
  var traceparent: String? = nil
  var tracestate: String? = nil

  init() {}

  init(of call: ServerCall) {
    traceparent = call.metadata.first("traceparent")
    tracestate = call.metadata.first("tracestate")
  }

  var headers: [(String, String)] {
    var headers: [(String, String)] = []
    if let traceparent { headers.append(("traceparent", traceparent)) }
    if let tracestate, !tracestate.isEmpty { headers.append(("tracestate", tracestate)) }
    return headers
  }

  struct Extractor: Tracing.Extractor {
    func extract(key: String, from carrier: TraceContextHeaders) -> String? {
      switch key {
      case "traceparent": carrier.traceparent
      case "tracestate": carrier.tracestate
      default: nil
      }
    }
  }

  struct Injector: Tracing.Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout TraceContextHeaders) {
      switch key {
      case "traceparent": carrier.traceparent = value
      case "tracestate": carrier.tracestate = value
      default: break
      }
    }
  }
}
