import GRPCServer
import NIOCore

/// `grpc.testing.TestService` as the gRPC interop test descriptions define it, so any standard
/// interop client can check this server. UnimplementedCall is deliberately left unimplemented.
public struct TestService: ServiceProvider {
  public let serviceName = "grpc.testing.TestService"

  public init() {}

  public var routes: [Route] {
    [
      .unary("/grpc.testing.TestService/EmptyCall") { call, _ in
        InteropMetadata.echoInitial(call)
        call.respond(InteropEncoding.empty, trailers: InteropMetadata.trailing(call))
      },
      .unary("/grpc.testing.TestService/UnaryCall") { call, bytes in Self.unaryCall(call, bytes) },
      .serverStreaming("/grpc.testing.TestService/StreamingOutputCall") { call, bytes in
        guard let request = StreamingOutputCallRequest(bytes) else {
          call.finish(Status(.internal, "could not parse StreamingOutputCallRequest"))
          return
        }
        if let problem = request.parameters.lazy.compactMap({ Self.checkResponseSize($0.size) }).first {
          call.finish(problem)
          return
        }
        InteropMetadata.echoInitial(call)
        let writer = ResponseScheduler(call: call)
        writer.enqueue(request.parameters)
        writer.finishWhenDrained(status: InteropMetadata.status(request.responseStatus))
      },
      .streaming("/grpc.testing.TestService/StreamingInputCall") { call in StreamingInputHandler(call: call) },
      .streaming("/grpc.testing.TestService/FullDuplexCall") { call in DuplexHandler(call: call, half: false) },
      .streaming("/grpc.testing.TestService/HalfDuplexCall") { call in DuplexHandler(call: call, half: true) },
    ]
  }

  /// Largest payload one response may ask for; beyond it a request could make the server allocate
  /// gigabytes.
  static let maximumResponseSize = 16 * 1024 * 1024

  static func checkResponseSize(_ size: Int) -> Status? {
    guard size >= 0, size <= maximumResponseSize else {
      return Status(.invalidArgument, "response size \(size) is outside 0...\(maximumResponseSize)")
    }
    return nil
  }

  private static func unaryCall(_ call: ServerCall, _ bytes: [UInt8]) {
    guard let request = SimpleRequest(bytes) else {
      call.finish(Status(.internal, "could not parse SimpleRequest"))
      return
    }
    if let problem = checkResponseSize(request.responseSize) {
      call.finish(problem)
      return
    }
    if request.expectCompressed && !call.lastMessageWasCompressed {
      call.finish(Status(.invalidArgument, "expected a compressed request message"))
      return
    }
    InteropMetadata.echoInitial(call)
    let status = InteropMetadata.status(request.responseStatus)
    guard status.code == .ok else {
      call.finish(status, trailers: InteropMetadata.trailing(call))
      return
    }
    if request.responseCompressed && call.responseEncoding == .identity {
      call.responseEncoding = call.acceptedEncodings.flatMap(CompressionAlgorithm.preferred) ?? .identity
    }
    call.send(InteropEncoding.simpleResponse(payloadSize: request.responseSize), compress: request.responseCompressed)
    call.finish(.ok, trailers: InteropMetadata.trailing(call))
  }
}

/// The metadata echo and status rules every interop method shares.
enum InteropMetadata {
  static func echoInitial(_ call: ServerCall) {
    if let value = call.metadata.first("x-grpc-test-echo-initial") {
      var metadata = Metadata()
      metadata.add("x-grpc-test-echo-initial", value)
      call.addInitialMetadata(metadata)
    }
  }

  static func trailing(_ call: ServerCall) -> Metadata {
    var metadata = Metadata()
    if let value = call.metadata.firstBinary("x-grpc-test-echo-trailing-bin") {
      metadata.add("x-grpc-test-echo-trailing-bin", binary: value)
    }
    return metadata
  }

  static func status(_ echo: EchoStatus?) -> Status {
    guard let echo, echo.code != 0 else { return .ok }
    return Status(Status.Code(rawValue: Int(echo.code)) ?? .unknown, echo.message)
  }
}

/// Sends StreamingOutputCallResponses one after another, each after its `interval_us`, then
/// finishes the call once asked to and nothing is left.
final class ResponseScheduler {
  private let call: ServerCall
  private var queue: [ResponseParameters] = []
  private var isSending = false
  private var pendingStatus: Status? = nil
  private var timer: Scheduled<Void>? = nil

  init(call: ServerCall) {
    self.call = call
    call.onCancel = { [weak self] _ in
      self?.timer?.cancel()
      self?.queue.removeAll()
    }
    // A client that reads slowly holds the rest of the queue back instead of filling memory.
    call.onWritable = { [weak self] in
      guard let self, self.isWaitingForReader else { return }
      self.isWaitingForReader = false
      self.sendNext()
    }
  }

  private var isWaitingForReader = false

  var isIdle: Bool { queue.isEmpty && !isSending }

  func enqueue(_ parameters: [ResponseParameters]) {
    queue.append(contentsOf: parameters)
    if !isSending { sendNext() }
  }

  func finishWhenDrained(status: Status) {
    pendingStatus = status
    if isIdle { finish() }
  }

  private func sendNext() {
    guard call.isWritable else {
      isWaitingForReader = true
      return
    }
    guard !queue.isEmpty else {
      isSending = false
      if pendingStatus != nil { finish() }
      return
    }
    isSending = true
    let next = queue.removeFirst()
    let send = { [self] in
      if next.compressed && call.responseEncoding == .identity {
        call.responseEncoding = call.acceptedEncodings.flatMap(CompressionAlgorithm.preferred) ?? .identity
      }
      call.send(InteropEncoding.streamingOutputResponse(payloadSize: next.size), compress: next.compressed)
      sendNext()
    }
    if next.intervalMicroseconds > 0 {
      timer = call.eventLoop.assumeIsolated().scheduleTask(in: .microseconds(Int64(next.intervalMicroseconds))) {
        send()
      }
    } else {
      send()
    }
  }

  private func finish() {
    call.finish(pendingStatus ?? .ok, trailers: InteropMetadata.trailing(call))
  }
}

/// StreamingInputCall: adds up the payload sizes and answers once the client is done.
final class StreamingInputHandler: ServerCallHandler {
  private let call: ServerCall
  private var total = 0

  init(call: ServerCall) {
    self.call = call
  }

  func didReceive(_ message: [UInt8]) {
    guard let request = StreamingInputCallRequest(message) else {
      call.finish(Status(.internal, "could not parse StreamingInputCallRequest"))
      return
    }
    if request.expectCompressed && !call.lastMessageWasCompressed {
      call.finish(Status(.invalidArgument, "expected a compressed request message"))
      return
    }
    total += request.payloadSize
  }

  func didReceiveEnd() {
    call.respond(InteropEncoding.streamingInputResponse(aggregatedSize: total))
  }
}

/// FullDuplexCall answers each request as it arrives; HalfDuplexCall holds them until the client
/// half-closes, then answers them all.
final class DuplexHandler: ServerCallHandler {
  private let call: ServerCall
  private let half: Bool
  private let scheduler: ResponseScheduler
  private var held: [ResponseParameters] = []

  init(call: ServerCall, half: Bool) {
    self.call = call
    self.half = half
    self.scheduler = ResponseScheduler(call: call)
    InteropMetadata.echoInitial(call)
    // Full duplex clients expect the headers (and the echoed metadata) before any response.
    if !half { call.sendInitialMetadata() }
  }

  func didReceive(_ message: [UInt8]) {
    guard let request = StreamingOutputCallRequest(message) else {
      call.finish(Status(.internal, "could not parse StreamingOutputCallRequest"))
      return
    }
    let status = InteropMetadata.status(request.responseStatus)
    if status.code != .ok {
      call.finish(status, trailers: InteropMetadata.trailing(call))
      return
    }
    if let problem = request.parameters.lazy.compactMap({ TestService.checkResponseSize($0.size) }).first {
      call.finish(problem)
      return
    }
    if half {
      held.append(contentsOf: request.parameters)
    } else {
      scheduler.enqueue(request.parameters)
    }
  }

  func didReceiveEnd() {
    if half { scheduler.enqueue(held) }
    scheduler.finishWhenDrained(status: .ok)
  }
}
