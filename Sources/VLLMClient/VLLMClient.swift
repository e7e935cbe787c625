import AsyncHTTPClient
import Logging
import NIOCore
import NIOHTTP1

/// A client for vLLM's OpenAI-compatible HTTP API: a keep-alive connection pool, bearer auth,
/// request deadlines, event streams read as they arrive, and errors in one shape. Each request
/// runs on the event loop the caller names, with its handler.
public final class VLLMClient: Sendable {
  public let baseURL: String
  private let apiKey: String?
  private let http: HTTPClient
  /// Largest JSON body accepted from vLLM.
  public let maximumBodySize: Int

  public init(
    baseURL: String, apiKey: String?, eventLoopGroup: any EventLoopGroup, maximumBodySize: Int = 64 * 1024 * 1024,
    connectionsPerHost: Int = 1024
  ) {
    var trimmed = baseURL
    while trimmed.hasSuffix("/") { trimmed.removeLast() }
    self.baseURL = trimmed
    self.apiKey = apiKey
    self.maximumBodySize = maximumBodySize
    var configuration = HTTPClient.Configuration()
    configuration.connectionPool = .init(
      idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: connectionsPerHost)
    // A refused connection fails the call at once (UNAVAILABLE) instead of being retried until
    // the client's deadline: callers and their load balancers decide about retries.
    configuration.connectionPool.retryConnectionEstablishment = false
    configuration.timeout = .init(connect: .seconds(10))
    configuration.decompression = .disabled
    configuration.httpVersion = .http1Only
    http = HTTPClient(eventLoopGroupProvider: .shared(eventLoopGroup), configuration: configuration)
  }

  public func shutdown() async throws {
    try await http.shutdown()
  }

  /// Starts a request whose response goes to `handler` on `eventLoop`.
  public func start(
    method: HTTPMethod, path: String, body: [UInt8]?, contentType: String = "application/json",
    extraHeaders: [(String, String)] = [], deadline: NIODeadline?, eventLoop: any EventLoop,
    handler: any VLLMResponseHandler
  ) -> VLLMCall {
    let delegate = VLLMResponseDelegate(handler: handler, eventLoop: eventLoop, maximumBodySize: maximumBodySize)
    do {
      var request = try HTTPClient.Request(url: baseURL + path, method: method)
      if let body {
        request.headers.add(name: "content-type", value: contentType)
        request.body = .bytes(body)
      }
      request.headers.add(name: "accept", value: "application/json, text/event-stream")
      if let apiKey { request.headers.add(name: "authorization", value: "Bearer \(apiKey)") }
      for (name, value) in extraHeaders { request.headers.add(name: name, value: value) }
      // `.delegate(on:)`: the handler runs on the caller's loop, and the connection is on it too
      // when one is free there. `.delegateAndChannel` would insist, and AsyncHTTPClient closes
      // the loop-bound connections it makes for that after one request, so nothing is reused.
      let task = http.execute(
        request: request, delegate: delegate, eventLoop: .delegate(on: eventLoop), deadline: deadline)
      return VLLMCall(task: task, delegate: delegate)
    } catch {
      delegate.fail(
        VLLMError(kind: .connectionFailed, httpStatus: 503, message: "invalid upstream URL \(baseURL + path): \(error)")
      )
      return VLLMCall(task: nil, delegate: delegate)
    }
  }
}

/// A request in flight.
public struct VLLMCall: Sendable {
  let task: HTTPClient.Task<Void>?
  let delegate: VLLMResponseDelegate

  /// Closes the upstream request at once: vLLM stops generating when its connection closes.
  public func cancel() {
    delegate.cancelled()
    task?.cancel()
  }

  /// The handler can take events again after saying it could not.
  public func resume() {
    delegate.resume()
  }
}
