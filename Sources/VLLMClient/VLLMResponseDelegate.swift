import AsyncHTTPClient
import NIOCore
import NIOHTTP1

/// AsyncHTTPClient's view of one response. Runs on the request's event loop; its state is bound
/// to that loop, so the handler, which is not Sendable, is only ever touched there.
final class VLLMResponseDelegate: HTTPClientResponseDelegate {
  typealias Response = Void

  private struct State {
    var handler: (any VLLMResponseHandler)?
    var status = 0
    var isEventStream = false
    var contentType = ""
    var parser = ServerSentEventParser()
    var body: [UInt8] = []
    var pendingResume: EventLoopPromise<Void>? = nil
    var finished = false
  }

  private let state: NIOLoopBoundBox<State>
  private let eventLoop: any EventLoop
  private let maximumBodySize: Int

  init(handler: any VLLMResponseHandler, eventLoop: any EventLoop, maximumBodySize: Int) {
    self.state = NIOLoopBoundBox(State(handler: handler), eventLoop: eventLoop)
    self.eventLoop = eventLoop
    self.maximumBodySize = maximumBodySize
  }

  func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
    state.value.status = Int(head.status.code)
    let contentType = head.headers.first(name: "content-type") ?? ""
    state.value.contentType = contentType
    state.value.isEventStream =
      (200..<300).contains(Int(head.status.code)) && contentType.hasPrefix("text/event-stream")
    return eventLoop.makeSucceededVoidFuture()
  }

  func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
    guard !state.value.finished, let handler = state.value.handler else { return eventLoop.makeSucceededVoidFuture() }
    if state.value.isEventStream {
      // The parser is taken out of the state while it runs: the handler may end the call (and
      // touch the state) from inside an event.
      var parser = state.value.parser
      defer { state.value.parser = parser }
      do {
        try buffer.withUnsafeReadableBytes { bytes in
          try parser.feed(raw: bytes) { event in
            if !state.value.finished { handler.vllmEvent(event) }
          }
        }
      } catch {
        finish(
          .failed(VLLMError(kind: .malformed, httpStatus: 502, message: "vLLM sent a broken event stream: \(error)")))
        task.cancel()
        return eventLoop.makeSucceededVoidFuture()
      }
      if !handler.vllmWantsMore && !state.value.finished {
        let promise = eventLoop.makePromise(of: Void.self)
        state.value.pendingResume = promise
        return promise.futureResult
      }
    } else {
      guard state.value.body.count + buffer.readableBytes <= maximumBodySize else {
        finish(
          .failed(
            VLLMError(kind: .malformed, httpStatus: 502, message: "vLLM's response exceeds \(maximumBodySize) bytes")))
        task.cancel()
        return eventLoop.makeSucceededVoidFuture()
      }
      state.value.body.append(contentsOf: buffer.readableBytesView)
    }
    return eventLoop.makeSucceededVoidFuture()
  }

  func didFinishRequest(task: HTTPClient.Task<Void>) throws {
    let status = state.value.status
    if state.value.isEventStream {
      finish(.streamEnded(cleanly: !state.value.parser.hasPartialEvent))
    } else if (200..<300).contains(status) {
      finish(.body(state.value.body, contentType: state.value.contentType))
    } else {
      finish(.failed(VLLMError.fromResponse(status: status, body: state.value.body)))
    }
  }

  func didReceiveError(task: HTTPClient.Task<Void>, _ error: any Error) {
    fail(Self.normalise(error))
  }

  /// Fails the call from any thread.
  func fail(_ error: VLLMError) {
    if eventLoop.inEventLoop {
      finish(.failed(error))
    } else {
      eventLoop.execute { self.finish(.failed(error)) }
    }
  }

  func cancelled() {
    if eventLoop.inEventLoop {
      state.value.finished = true
      state.value.handler = nil
      state.value.pendingResume?.succeed(())
      state.value.pendingResume = nil
    } else {
      eventLoop.execute { self.cancelled() }
    }
  }

  func resume() {
    if eventLoop.inEventLoop {
      let promise = state.value.pendingResume
      state.value.pendingResume = nil
      promise?.succeed(())
    } else {
      eventLoop.execute { self.resume() }
    }
  }

  private func finish(_ outcome: VLLMOutcome) {
    guard !state.value.finished else { return }
    state.value.finished = true
    let handler = state.value.handler
    state.value.handler = nil
    state.value.pendingResume?.succeed(())
    state.value.pendingResume = nil
    handler?.vllmFinished(outcome)
  }

  static func normalise(_ error: any Error) -> VLLMError {
    if let error = error as? HTTPClientError {
      switch error {
      case .deadlineExceeded, .readTimeout, .connectTimeout, .writeTimeout:
        return VLLMError(kind: .timeout, httpStatus: 504, message: "vLLM did not answer in time (\(error))")
      case .remoteConnectionClosed:
        return VLLMError(
          kind: .malformed, httpStatus: 502, message: "vLLM closed the connection before the response ended")
      case .cancelled:
        return VLLMError(kind: .connectionFailed, httpStatus: 499, message: "cancelled")
      default:
        break
      }
    }
    let text = "\(error)"
    if text.contains("refused") || text.contains("connect") {
      return VLLMError(kind: .connectionFailed, httpStatus: 503, message: "cannot reach vLLM: \(text)")
    }
    return VLLMError(kind: .connectionFailed, httpStatus: 502, message: "upstream request failed: \(text)")
  }
}
