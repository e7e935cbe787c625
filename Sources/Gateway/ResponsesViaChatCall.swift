import GRPCServer
import ProtoJSON
import VLLMClient

/// CreateResponse and StreamResponse for an upstream without /v1/responses: the request goes to
/// /v1/chat/completions, and the reply (or the chunk stream) comes back as Responses objects.
final class ResponsesViaChatCall: VLLMResponseHandler {
  private let call: ServerCall
  private let operation: Operation
  private let context: GatewayContext
  private var upstream: VLLMCall? = nil
  private var request: [String: Any] = [:]
  private var builder: ResponsesStreamBuilder? = nil
  private var sawDone = false

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
    }
    upstream = context.startUpstream(
      for: call, path: "/v1/chat/completions", body: ResponsesChatTranslation.data(chat), handler: self,
      pacedByReader: true)
  }

  var vllmWantsMore: Bool { call.isWritable }

  func vllmEvent(_ event: ServerSentEvent) {
    guard !call.isFinished, !sawDone, builder != nil else { return }
    if event.isDone {
      sawDone = true
      return
    }
    if let error = VLLMError.fromErrorEvent(event.data) {
      fail(UpstreamStatus.error(error))
      return
    }
    guard let chunk = ResponsesChatTranslation.object(event.data) else {
      fail(StatusError(.unavailable, "vLLM sent a chat chunk that is not a JSON object"))
      return
    }
    send(builder!.events(forChunk: chunk))
  }

  func vllmFinished(_ outcome: VLLMOutcome) {
    upstream = nil
    switch outcome {
    case .failed(let error):
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
        call.finish(Status(.unavailable, "vLLM's event stream ended before it was complete"))
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
