import GRPCServer
import ProtoJSON
import VLLMClient

/// A server-streaming RPC: vLLM's event stream relayed event by event as response messages. An
/// error event ends the call with its status after the messages already sent; a stream that
/// stops before its end (`[DONE]` or a terminal event) is never reported as OK. A slow reader
/// holds vLLM back: reading pauses while the call's send buffer is full.
final class StreamingUpstreamCall: VLLMResponseHandler {
  private let call: ServerCall
  private let operation: Operation
  private let context: GatewayContext
  private var upstream: VLLMCall? = nil
  /// Called instead of failing when the upstream lacks the operation's route (404, 405 or 501
  /// without a vLLM error type), so the caller can take another way.
  var onRouteMissing: (() -> Void)? = nil
  private var sawEnd = false
  private let chunkSchema: MessageSchema?
  /// Each chunk's protobuf, translated into the same storage every time.
  private var chunk: [UInt8] = []

  init(call: ServerCall, operation: Operation, context: GatewayContext) {
    self.call = call
    self.operation = operation
    self.context = context
    self.chunkSchema = context.toProto.schema.message(operation.responseType)
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
    upstream = context.startUpstream(
      for: call, path: operation.upstreamPath, body: body.bytes, contentType: body.contentType, handler: self,
      pacedByReader: true)
  }

  var vllmWantsMore: Bool { call.isWritable }

  func vllmEvent(_ event: ServerSentEvent) {
    guard !call.isFinished, !sawEnd else { return }
    if event.isDone {
      sawEnd = true
      return
    }
    if let error = VLLMError.fromErrorEvent(event.data) {
      upstream?.cancel()
      upstream = nil
      call.finish(UpstreamStatus.error(error))
      return
    }
    if let name = event.event, operation.terminalEvents.contains(name) { sawEnd = true }
    do {
      guard let chunkSchema else { throw ProtoJSONError("unknown message type \(operation.responseType)") }
      chunk.removeAll(keepingCapacity: true)
      try context.toProto.append(from: event.data, message: chunkSchema, to: &chunk)
      call.send(chunk, inputArrivedAt: event.receivedAt)
    } catch {
      upstream?.cancel()
      upstream = nil
      call.finish(Status(.unavailable, "vLLM sent an event that is not valid JSON: \(error)"))
    }
  }

  func vllmRequestSent(at time: UInt64) {
    call.requestForwarded(at: time)
  }

  func vllmFinished(_ outcome: VLLMOutcome) {
    upstream = nil
    switch outcome {
    case .failed(let error):
      if let onRouteMissing, error.isMissingRoute {
        self.onRouteMissing = nil
        onRouteMissing()
        return
      }
      call.finish(UpstreamStatus.error(error))
    case .body:
      call.finish(Status(.unavailable, "vLLM answered \(operation.upstreamPath) without an event stream"))
    case .streamEnded:
      if sawEnd {
        call.finish(.ok)
      } else {
        call.finish(Status(.unavailable, "vLLM's event stream ended before it was complete"))
      }
    }
  }
}
