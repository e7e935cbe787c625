import Fleet
import Foundation
import GRPCServer
import ProtoJSON
import VLLMClient

/// Rerank: /v1/rerank, or /rerank on servers without it (remembered, so later calls go straight
/// there). Results come back best first, with their documents only when asked for: vLLM sends
/// them even when return_documents is false.
final class RerankCall: RoutedResponseHandler {
  private let call: ServerCall
  private let operation: Operation
  private let context: GatewayContext
  private var upstream: VLLMCall? = nil
  private var body: [UInt8] = []
  private var path = ""
  private var returnDocuments = true

  init(call: ServerCall, operation: Operation, context: GatewayContext) {
    self.call = call
    self.operation = operation
    self.context = context
  }

  func start(request: [UInt8]) {
    do {
      body = try UpstreamRequestBody.json(from: request, operation: operation, converter: context.toJSON, stream: false)
    } catch {
      call.finish(Status(.internal, "could not read \(operation.requestType): \(error)"))
      return
    }
    let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
    returnDocuments = object?["return_documents"] as? Bool ?? true
    send(to: context.rerankPath.withLockedValue { $0 })
  }

  private func send(to path: String) {
    self.path = path
    upstream = context.startUpstream(for: call, path: path, body: body, handler: self)
  }

  var vllmWantsMore: Bool { true }

  func vllmEvent(_ event: ServerSentEvent) {}

  func vllmFinished(_ outcome: VLLMOutcome) {
    upstream = nil
    switch outcome {
    case .failed(let error):
      if error.isMissingRoute, path == "/v1/rerank" {
        context.rerankPath.withLockedValue { $0 = "/rerank" }
        send(to: "/rerank")
        return
      }
      call.finish(UpstreamStatus.error(error))
    case .streamEnded:
      call.finish(Status(.internal, "vLLM answered rerank with an event stream"))
    case .body(let reply, _, _):
      guard var object = (try? JSONSerialization.jsonObject(with: Data(reply))) as? [String: Any] else {
        call.finish(Status(.unavailable, "vLLM's rerank reply is not a JSON object"))
        return
      }
      var results = object["results"] as? [[String: Any]] ?? []
      results.sort { ($0["relevance_score"] as? Double ?? 0) > ($1["relevance_score"] as? Double ?? 0) }
      if !returnDocuments {
        for index in results.indices { results[index]["document"] = nil }
      }
      object["results"] = results
      do {
        let json = try [UInt8](JSONSerialization.data(withJSONObject: object))
        call.respond(try context.toProto.proto(from: json, typeName: operation.responseType))
      } catch {
        call.finish(Status(.unavailable, "vLLM's rerank reply could not be read: \(error)"))
      }
    }
  }
}
