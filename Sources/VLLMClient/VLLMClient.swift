import AsyncHTTPClient
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOSSL

/// A client for vLLM's OpenAI-compatible HTTP API: a keep-alive connection pool, bearer auth,
/// request deadlines, event streams read as they arrive, and errors in one shape. Each request
/// runs on the event loop the caller names, with its handler.
public final class VLLMClient: Sendable {
  public let baseURL: String
  private let apiKey: String?
  private let http: HTTPClient
  /// Largest JSON body accepted from vLLM.
  public let maximumBodySize: Int
  /// For http:// upstreams: the gateway's own keep-alive pools, one per event loop, so a call's
  /// upstream request runs on its own loop with no lock or hop. https:// goes through
  /// AsyncHTTPClient, which brings TLS.
  private let endpoint: UpstreamEndpoint?
  /// The request heads' parts that are the same for every request there.
  private let headTemplate: HTTP1HeadTemplate?
  /// A box for the pool of each loop of the group, made up front: finding a call's pool takes no
  /// lock, which every thread's every call would otherwise share. Each pool is made on its loop,
  /// at the loop's first request. Found by the loop's place in `groupLoops`: a group has a loop
  /// a core, and comparing that many identities costs less than hashing one (a dictionary's
  /// lookup took about 150 instructions a call, callgrind).
  private let groupLoops: [ObjectIdentifier]
  private let loopPools: [NIOLoopBoundBox<LoopConnectionPool?>]
  /// The pools of loops outside the group (a caller's own), found under a lock.
  private let otherPools = NIOLockedValueBox<[ObjectIdentifier: NIOLoopBound<LoopConnectionPool>]>([:])
  private let idleConnectionsPerLoop: Int
  private let idleConnectionTimeout: TimeAmount
  /// How long vLLM may send nothing while a response is due (nil: no limit but the deadline).
  private let stallTimeout: TimeAmount?

  public init(
    baseURL: String, apiKey: String?, eventLoopGroup: any EventLoopGroup, maximumBodySize: Int = 64 * 1024 * 1024,
    connectionsPerHost: Int = 1024, idleConnectionsPerLoop: Int = 1024, idleConnectionTimeout: TimeAmount = .seconds(4),
    stallTimeout: TimeAmount? = .seconds(300), caFile: String? = nil
  ) {
    var trimmed = baseURL
    while trimmed.hasSuffix("/") { trimmed.removeLast() }
    self.baseURL = trimmed
    self.apiKey = apiKey
    // Checked once here: the request encoder trusts the headers the client itself sets.
    let authorization = apiKey.map { "Bearer \($0)" }.flatMap { HTTP1Request.isFieldValue($0) ? $0 : nil }
    self.maximumBodySize = maximumBodySize
    self.idleConnectionsPerLoop = idleConnectionsPerLoop
    self.idleConnectionTimeout = idleConnectionTimeout
    self.stallTimeout = stallTimeout
    let endpoint = UpstreamEndpoint(trimmed)
    self.endpoint = endpoint?.isTLS == false ? endpoint : nil
    self.headTemplate = self.endpoint.map {
      HTTP1HeadTemplate(authority: $0.authority, basePath: $0.basePath, authorization: authorization)
    }
    var groupLoops: [ObjectIdentifier] = []
    var loopPools: [NIOLoopBoundBox<LoopConnectionPool?>] = []
    if self.endpoint != nil {
      for loop in eventLoopGroup.makeIterator() {
        groupLoops.append(ObjectIdentifier(loop))
        loopPools.append(.makeEmptyBox(valueType: LoopConnectionPool.self, eventLoop: loop))
      }
    }
    self.groupLoops = groupLoops
    self.loopPools = loopPools
    var configuration = HTTPClient.Configuration()
    configuration.connectionPool = .init(
      idleTimeout: idleConnectionTimeout, concurrentHTTP1ConnectionsPerHostSoftLimit: connectionsPerHost)
    // A refused connection fails the call at once (UNAVAILABLE) instead of being retried until
    // the client's deadline: callers and their load balancers decide about retries.
    configuration.connectionPool.retryConnectionEstablishment = false
    // The gateway makes its own upstream span and sends its context; AsyncHTTPClient's would be
    // a stray root span per request (its context is the task's, and event loops have none).
    configuration.tracing.tracer = nil
    // AsyncHTTPClient's read timeout is its stall timeout: the time between two reads once the
    // request is sent. It also runs while a slow reader holds the stream back, which the gRPC
    // side's stream idle timeout (as long by default) ends anyway.
    configuration.timeout = .init(connect: .seconds(10), read: stallTimeout)
    configuration.decompression = .disabled
    configuration.httpVersion = .http1Only
    if let caFile {
      // An https:// vLLM whose certificate a private CA signed.
      var tls = TLSConfiguration.makeClientConfiguration()
      tls.trustRoots = .file(caFile)
      configuration.tlsConfiguration = tls
    }
    http = HTTPClient(eventLoopGroupProvider: .shared(eventLoopGroup), configuration: configuration)
  }

  public func shutdown() async throws {
    for box in loopPools {
      try? await box.eventLoop.submit { box.value?.closeAll() }.get()
    }
    let pools = self.otherPools.withLockedValue { $0 }
    for pool in pools.values {
      try? await pool.eventLoop.submit { pool.value.closeAll() }.get()
    }
    try await http.shutdown()
  }

  /// The pool of `eventLoop`, which the caller is on.
  private func pool(for eventLoop: any EventLoop, endpoint: UpstreamEndpoint) -> LoopConnectionPool {
    let key = ObjectIdentifier(eventLoop)
    if let index = groupLoops.firstIndex(of: key) {
      let box = loopPools[index]
      if let pool = box.value { return pool }
      let pool = makePool(on: eventLoop, endpoint: endpoint)
      box.value = pool
      return pool
    }
    if let pool = otherPools.withLockedValue({ $0[key] }) { return pool.value }
    let pool = makePool(on: eventLoop, endpoint: endpoint)
    otherPools.withLockedValue { $0[key] = NIOLoopBound(pool, eventLoop: eventLoop) }
    return pool
  }

  private func makePool(on eventLoop: any EventLoop, endpoint: UpstreamEndpoint) -> LoopConnectionPool {
    LoopConnectionPool(
      eventLoop: eventLoop, endpoint: endpoint, maximumIdle: idleConnectionsPerLoop, idleTimeout: idleConnectionTimeout,
      stallTimeout: stallTimeout)
  }

  /// Starts a request whose response goes to `handler` on `eventLoop`.
  public func start(
    method: HTTPMethod, path: String, body: [UInt8]?, contentType: String = "application/json",
    extraHeaders: [(String, String)] = [], deadline: NIODeadline?, eventLoop: any EventLoop,
    handler: any VLLMResponseHandler
  ) -> VLLMCall {
    if let endpoint, let headTemplate, eventLoop.inEventLoop {
      let pool = self.pool(for: eventLoop, endpoint: endpoint)
      let exchange = UpstreamExchange(
        handler: handler, maximumBodySize: maximumBodySize, pool: pool)
      var spare = pool.spareRequestBuffers.take()
      let request = HTTP1Request.encode(
        method: method, path: path, template: headTemplate, contentType: contentType, extraHeaders: extraHeaders,
        body: body, starts: &pool.requestStarts, reusing: &spare)
      exchange.start(request: request, deadline: deadline)
      return VLLMCall(control: exchange, eventLoop: eventLoop)
    }
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
      return VLLMCall(storage: .asyncHTTPClient(task, delegate))
    } catch {
      delegate.fail(
        VLLMError(kind: .connectionFailed, httpStatus: 503, message: "invalid upstream URL \(baseURL + path): \(error)")
      )
      return VLLMCall(storage: .asyncHTTPClient(nil, delegate))
    }
  }
}

/// What cancels and resumes a request, on its event loop: the client's own exchange, or what a
/// layer above puts behind a `VLLMCall` (a fleet's request, which may move between upstreams).
/// Class-bound, so a `VLLMCall` is a few references that copy with plain retains: a struct behind
/// a protocol was copied and destroyed through its value witnesses, about 400 instructions a
/// routed call (callgrind).
public protocol LoopBoundCallControl: AnyObject {
  func cancel()
  func resume()
}

/// A request in flight.
public struct VLLMCall: Sendable {
  enum Storage: Sendable {
    case onEventLoop(NIOLoopBound<any LoopBoundCallControl>)
    case asyncHTTPClient(HTTPClient.Task<Void>?, VLLMResponseDelegate)
  }

  let storage: Storage

  init(storage: Storage) {
    self.storage = storage
  }

  /// A request that `control` cancels and resumes on `eventLoop`.
  public init(control: any LoopBoundCallControl, eventLoop: any EventLoop) {
    self.storage = .onEventLoop(NIOLoopBound(control, eventLoop: eventLoop))
  }

  /// Closes the upstream request at once: vLLM stops generating when its connection closes.
  public func cancel() {
    switch storage {
    case .onEventLoop(let control):
      if control.eventLoop.inEventLoop {
        control.value.cancel()
      } else {
        control.eventLoop.execute { control.value.cancel() }
      }
    case .asyncHTTPClient(let task, let delegate):
      delegate.cancelled()
      task?.cancel()
    }
  }

  /// The handler can take events again after saying it could not.
  public func resume() {
    switch storage {
    case .onEventLoop(let control):
      if control.eventLoop.inEventLoop {
        control.value.resume()
      } else {
        control.eventLoop.execute { control.value.resume() }
      }
    case .asyncHTTPClient(_, let delegate):
      delegate.resume()
    }
  }
}
