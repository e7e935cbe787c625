import GRPCServer
import GatewayProtos
import NIOConcurrencyHelpers
import NIOCore
import ProtobufCMessages

/// `grpc.health.v1.Health`: Check and Watch. The empty service name stands for the server as a
/// whole; the application sets per-service statuses with `setStatus(_:for:)`.
public final class HealthService: ServiceProvider {
  public enum ServingStatus: Int32, Sendable {
    case unknown = 0
    case serving = 1
    case notServing = 2
    /// Only sent on Watch, for a service the server does not know (yet).
    case serviceUnknown = 3
  }

  private struct Watcher: Sendable {
    let service: String
    let call: NIOLoopBound<ServerCall>
  }

  private struct State {
    var statuses: [String: ServingStatus] = ["": .serving]
    var watchers: [Int: Watcher] = [:]
    var nextWatcherID = 0
  }

  public let serviceName = "grpc.health.v1.Health"
  private let state = NIOLockedValueBox(State())

  public init() {}

  public func setStatus(_ status: ServingStatus, for service: String = "") {
    let watchers = state.withLockedValue { state -> [Watcher] in
      state.statuses[service] = status
      return state.watchers.values.filter { $0.service == service }
    }
    for watcher in watchers {
      watcher.call.eventLoop.execute {
        watcher.call.value.send(Self.encodeResponse(status))
      }
    }
  }

  /// Marks the server and every known service NOT_SERVING, as a server does when it shuts down.
  public func markAllNotServing() {
    let services = state.withLockedValue { Array($0.statuses.keys) }
    for service in services { setStatus(.notServing, for: service) }
  }

  public var routes: [Route] {
    [
      .unary("/grpc.health.v1.Health/Check") { [self] call, request in check(call, request) },
      .serverStreaming("/grpc.health.v1.Health/Watch") { [self] call, request in watch(call, request) },
    ]
  }

  private func check(_ call: ServerCall, _ request: [UInt8]) {
    guard let service = Self.decodeServiceName(request) else {
      call.finish(Status(.internal, "could not parse grpc.health.v1.HealthCheckRequest"))
      return
    }
    guard let status = state.withLockedValue({ $0.statuses[service] }) else {
      call.finish(Status(.notFound, "unknown service '\(service)'"))
      return
    }
    call.respond(Self.encodeResponse(status))
  }

  private func watch(_ call: ServerCall, _ request: [UInt8]) {
    guard let service = Self.decodeServiceName(request) else {
      call.finish(Status(.internal, "could not parse grpc.health.v1.HealthCheckRequest"))
      return
    }
    let bound = NIOLoopBound(call, eventLoop: call.eventLoop)
    let (id, current) = state.withLockedValue { state -> (Int, ServingStatus) in
      let id = state.nextWatcherID
      state.nextWatcherID += 1
      state.watchers[id] = Watcher(service: service, call: bound)
      return (id, state.statuses[service] ?? .serviceUnknown)
    }
    call.onCancel = { [state] _ in
      state.withLockedValue { _ = $0.watchers.removeValue(forKey: id) }
    }
    call.send(Self.encodeResponse(current))
  }

  private static func decodeServiceName(_ bytes: [UInt8]) -> String? {
    guard
      let request = ProtobufC.decode(
        bytes, grpc__health__v1__health_check_request__descriptor_ptr(), as: Grpc__Health__V1__HealthCheckRequest.self)
    else { return nil }
    defer { ProtobufC.free(request) }
    return String(cString: request.pointee.service)
  }

  private static func encodeResponse(_ status: ServingStatus) -> [UInt8] {
    var response = Grpc__Health__V1__HealthCheckResponse()
    grpc__health__v1__health_check_response__init(&response)
    response.status = Grpc__Health__V1__HealthCheckResponse__ServingStatus(rawValue: UInt32(status.rawValue))
    return ProtobufC.encode(&response)
  }
}
