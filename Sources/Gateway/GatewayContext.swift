import Fleet
import GRPCServer
import NIOConcurrencyHelpers
import NIOHTTP1
import ProtoJSON
import VLLMClient

/// How the Responses RPCs reach vLLM.
public enum ResponsesMode: String, Sendable, CaseIterable {
  /// vLLM's /v1/responses, until the upstream answers that it has no such route; from then on,
  /// chat completions.
  case auto
  /// Always /v1/responses.
  case native
  /// Always chat completions, converted both ways.
  case chat
}

/// What every operation's calls share: the upstreams, the translators, and what the gateway has
/// learnt about the upstream. A class: every call holds it, and as a struct each call's copy
/// retained and released its seven references (about 400 instructions a call, callgrind).
final class GatewayContext: Sendable {
  let fleet: Fleet
  let toJSON: ProtoToJSON
  let toProto: JSONToProto
  let responsesMode: ResponsesMode
  /// Whether streams move to another upstream when theirs fails part way.
  let migration: StreamMigrationPolicy
  /// Set once the upstream has shown it lacks /v1/responses.
  let responsesMissing = NIOLockedValueBox(false)
  /// The rerank path that worked last: /v1/rerank until the upstream shows it only has /rerank.
  let rerankPath = NIOLockedValueBox("/v1/rerank")

  init(
    fleet: Fleet, responsesMode: ResponsesMode, migration: StreamMigrationPolicy = .off, schema: Schema = .vllmOrdered
  ) {
    self.fleet = fleet
    self.migration = migration
    self.toJSON = ProtoToJSON(schema: schema)
    self.toProto = JSONToProto(schema: schema)
    self.responsesMode = responsesMode
  }

  var responsesViaChat: Bool {
    responsesMode == .chat || (responsesMode == .auto && responsesMissing.withLockedValue { $0 })
  }
}

extension GatewayContext {
  /// The message an operation's replies (or a stream's chunks) translate into: resolved with the
  /// operation when its schema had it, else looked up here.
  func responseSchema(of operation: Operation) -> MessageSchema? {
    operation.responseMessage ?? toProto.schema.message(operation.responseType)
  }

  /// Starts `call`'s request to vLLM with the metadata vLLM gets forwarded, bounded by the call's
  /// deadline. The call's cancellation closes it, and for a stream, the call's send buffer
  /// draining resumes reading it. The closures hold the upstream call, a value, and go when the
  /// call ends. Nil when the gateway's limit on upstream requests in flight refuses the call,
  /// which has then been finished with RESOURCE_EXHAUSTED. `handlerKeepsRecord`: the handler
  /// notes its upstream, answer and usage in the call's record itself, so no CallMeter goes
  /// between them (UnaryUpstreamCall: an object and its forwarding less a call).
  /// `handlerCancels`: the handler sets the call's `onCancel` itself, to a closure that holds
  /// only the handler: one that holds the returned VLLMCall (an event loop and a control, four
  /// words) is allocated, about 300 instructions a call (callgrind).
  func startUpstream(
    for call: ServerCall, method: HTTPMethod = .POST, path: String, body: [UInt8]?,
    contentType: String = "application/json", handler: any RoutedResponseHandler, pacedByReader: Bool = false,
    excluding: [Int] = [], handlerKeepsRecord: Bool = false, handlerCancels: Bool = false
  ) -> VLLMCall? {
    // Kept only while client keys or the access log are on.
    let record = call.account as? CallRecord
    let key =
      fleet.isSingle && record == nil
      ? RoutingKey(model: "", workload: .other)
      : RoutingKeyReader.key(path: path, body: body, contentType: contentType, readingPrompt: !fleet.isSingle)
    var handler = handler
    if let record {
      record.model = key.model
      // A call that starts a second request (the Responses fallback) was admitted with the first.
      if let clientKey = call.clientIdentity as? ClientKey, record.admittedKey == nil {
        if let refusal = clientKey.admit(model: key.model) {
          call.finish(refusal)
          return nil
        }
        record.admittedKey = clientKey
      }
      if !handlerKeepsRecord { handler = CallMeter(handler, record: record) }
    }
    if let refusal = call.admit() {
      call.finish(UpstreamStatus.refused(refusal))
      return nil
    }
    // While tracing, vLLM gets the trace context of the upstream span rather than the caller's.
    let forwarded =
      if let trace = record?.trace {
        ForwardedMetadata.headers(of: call, traceContext: trace.startUpstream(path: path, model: key.model))
      } else {
        ForwardedMetadata.headers(of: call)
      }
    let started = fleet.start(
      key: key, method: method, path: path, body: body, contentType: contentType,
      extraHeaders: forwarded, deadline: call.deadline, eventLoop: call.eventLoop,
      handler: handler, excluding: excluding)
    let upstream: VLLMCall
    switch started {
    case .success(let started):
      upstream = started
    case .failure(.unknownModel(let model, let served)):
      call.finish(UpstreamStatus.unknownModel(model, served: served))
      return nil
    }
    if !handlerCancels { call.onCancel = { _ in upstream.cancel() } }
    if pacedByReader { call.onWritable = { upstream.resume() } }
    return upstream
  }
}
