import Fleet
import GRPCServer
import NIOHTTP1
import ProtoJSON
import VLLMClient

/// A unary RPC: one request to vLLM, its JSON reply translated into the response message.
final class UnaryUpstreamCall: RoutedResponseHandler {
  private let call: ServerCall
  private let operation: Operation
  private let context: GatewayContext
  private var upstream: VLLMCall? = nil
  /// What the gateway keeps of the call, while keys, the access log, metrics or tracing are on:
  /// this call notes its upstream, answer and usage there itself, with no CallMeter between.
  private var record: CallRecord? = nil
  /// Called instead of failing when the upstream lacks the operation's route (404, 405 or 501
  /// without a vLLM error type), so the caller can take another way.
  var onRouteMissing: (() -> Void)? = nil

  init(call: ServerCall, operation: Operation, context: GatewayContext) {
    self.call = call
    self.operation = operation
    self.context = context
  }

  func start(request: [UInt8]) {
    var body: [UInt8]? = nil
    var contentType = "application/json"
    if !operation.isGet {
      do {
        let made = try UpstreamRequestBody.make(from: request, operation: operation, context: context, stream: false)
        body = made.bytes
        contentType = made.contentType
      } catch {
        call.finish(Status(.internal, "could not read \(operation.requestType): \(error)"))
        return
      }
    }
    record = call.account as? CallRecord
    upstream = context.startUpstream(
      for: call, method: operation.isGet ? .GET : .POST, path: operation.upstreamPath, body: body,
      contentType: contentType, handler: self, handlerKeepsRecord: true, handlerCancels: true)
    if upstream != nil {
      // Holding only this object, the closure needs no allocation of its own.
      call.onCancel = { [self] _ in upstream?.cancel() }
    }
  }

  func routed(to upstream: Upstream) {
    record?.routed(to: upstream)
  }

  var vllmWantsMore: Bool { true }

  func vllmEvent(_ event: ServerSentEvent) {}

  func vllmRequestSent(at time: UInt64) {
    call.requestForwarded(at: time)
  }

  func vllmFinished(_ outcome: VLLMOutcome) {
    upstream = nil
    switch outcome {
    case .failed(let error):
      record?.upstreamFinished(outcome, usage: TokenUsage())
      if let onRouteMissing, error.isMissingRoute {
        self.onRouteMissing = nil
        onRouteMissing()
        return
      }
      call.finish(UpstreamStatus.error(error))
    case .streamEnded:
      record?.upstreamFinished(outcome, usage: TokenUsage())
      call.finish(Status(.internal, "vLLM answered \(operation.upstreamPath) with an event stream"))
    case .body(let body, let contentType, let receivedAt):
      record?.replyArrived(body, at: receivedAt)
      if operation.acceptsPlainText && !contentType.contains("json") {
        record?.upstreamFinished(outcome, usage: TokenUsage())
        // Plain text, SRT or VTT: the whole body is the reply's text (field 1).
        var reply = ProtoWireWriter()
        reply.lengthDelimited(1, body)
        call.respond(reply.bytes, inputArrivedAt: receivedAt)
        return
      }
      do {
        guard let message = context.responseSchema(of: operation) else {
          throw ProtoJSONError("unknown message type \(operation.responseType)")
        }
        // Translated straight into the call's output, as a stream's chunks are: no array of its
        // own to allocate, fill and copy.
        var usage: TokenUsage? = nil
        try call.send(inputArrivedAt: receivedAt) { output, start in
          output.reserveCapacity(output.count + body.count)
          // The counts read from the message just written, where the schema says they are:
          // cheaper than finding them in vLLM's JSON (ReplyUsageFields). Where the reply's
          // template wrote the usage field, it says where, and the fields before it are not walked.
          guard record != nil, let fields = operation.replyUsage else {
            try context.toProto.append(from: body, message: message, to: &output, shapes: operation.replyShapes)
            return true
          }
          let usageAt = try context.toProto.append(
            from: body, message: message, to: &output, shapes: operation.replyShapes, watching: fields.usageNumber)
          if let usageAt {
            usage = fields.read(output, usageAt: usageAt)
          } else {
            usage = fields.read(output, range: start..<output.count)
          }
          return true
        }
        if let record { record.upstreamFinished(outcome, usage: usage ?? TokenUsage(in: body)) }
        call.finish(.ok)
      } catch {
        // vLLM spent the tokens all the same.
        record?.upstreamFinished(outcome, usage: TokenUsage(in: body))
        call.finish(Status(.unavailable, "vLLM's reply to \(operation.upstreamPath) is not valid JSON: \(error)"))
      }
    }
  }
}
