import GRPCServer

/// Request metadata that goes on to vLLM as HTTP headers: `x-request-id` (vLLM names its request
/// after it, so logs on both sides match) and W3C trace context (`traceparent`, `tracestate`),
/// so a trace continues into vLLM's OpenTelemetry spans.
enum ForwardedMetadata {
  /// `x-request-id` from the call, with `traceContext` (the upstream span's) in place of the
  /// caller's trace context.
  static func headers(of call: ServerCall, traceContext: [(String, String)]) -> [(String, String)] {
    var headers = traceContext
    if let requestID = call.metadata.first("x-request-id") { headers.append(("x-request-id", requestID)) }
    return headers
  }

  static func headers(of call: ServerCall) -> [(String, String)] {
    let (requestID, traceparent, tracestate) = call.metadata.first("x-request-id", "traceparent", "tracestate")
    var headers: [(String, String)] = []
    if let requestID { headers.append(("x-request-id", requestID)) }
    if let traceparent { headers.append(("traceparent", traceparent)) }
    if let tracestate { headers.append(("tracestate", tracestate)) }
    return headers
  }
}
