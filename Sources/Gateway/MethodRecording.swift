import Tracing

/// Where the calls of one RPC method are recorded, made once per route: its access log, metrics
/// and tracer, and its `"method":"…"` log member already written out. Each CallRecord holds
/// one reference to it rather than the method name and each destination: 32 bytes less per call
/// in flight (10,000 open streams hold 10,000 records), and the name is not escaped per line.
final class MethodRecording: Sendable {
  let accessLog: AccessLog?
  let metrics: MethodMetrics?
  let tracer: (any Tracer)?
  /// The log line's `"method":"<path>"`, escaped once.
  let accessLogMember: [UInt8]

  init(method: String, accessLog: AccessLog?, metrics: MethodMetrics?, tracer: (any Tracer)?) {
    self.accessLog = accessLog
    self.metrics = metrics
    self.tracer = tracer
    accessLogMember = AccessLog.methodMember(method)
  }
}
