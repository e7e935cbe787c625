import AsyncHTTPClient
import NIOCore
import NIOHTTP1

/// AsyncHTTPClient's view of one response. Runs on the request's event loop; its state is bound
/// to that loop, so the handler, which is not Sendable, is only ever touched there.
final class VLLMResponseDelegate: HTTPClientResponseDelegate {
  typealias Response = Void

  private struct State {
    var handler: (any VLLMResponseHandler)?
    var reader: UpstreamResponseReader
    var pendingResume: EventLoopPromise<Void>? = nil
    var finished = false
  }

  private let state: NIOLoopBoundBox<State>
  private let eventLoop: any EventLoop

  init(handler: any VLLMResponseHandler, eventLoop: any EventLoop, maximumBodySize: Int) {
    self.state = NIOLoopBoundBox(
      State(handler: handler, reader: UpstreamResponseReader(maximumBodySize: maximumBodySize)), eventLoop: eventLoop)
    self.eventLoop = eventLoop
  }

  func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
    state.value.reader.head(head)
    return eventLoop.makeSucceededVoidFuture()
  }

  func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
    guard !state.value.finished, let handler = state.value.handler else { return eventLoop.makeSucceededVoidFuture() }
    // The reader is taken out of the state while it runs: the handler may end the call (and
    // touch the state) from inside an event.
    var reader = state.value.reader
    let failure = reader.bodyPart(buffer, receivedAt: NIODeadline.now().uptimeNanoseconds) { event in
      if !state.value.finished { handler.vllmEvent(event) }
    }
    state.value.reader = reader
    if let failure {
      finish(.failed(failure))
      task.cancel()
      return eventLoop.makeSucceededVoidFuture()
    }
    if !handler.vllmWantsMore && !state.value.finished {
      let promise = eventLoop.makePromise(of: Void.self)
      state.value.pendingResume = promise
      return promise.futureResult
    }
    return eventLoop.makeSucceededVoidFuture()
  }

  func didFinishRequest(task: HTTPClient.Task<Void>) throws {
    finish(state.value.reader.takeOutcome())
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
      case .readTimeout:
        return VLLMError(
          kind: .stalled, httpStatus: 504, message: "vLLM sent nothing for too long while a response was due")
      case .deadlineExceeded, .connectTimeout, .writeTimeout:
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
