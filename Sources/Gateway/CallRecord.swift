import Fleet
import GRPCServer
import NIOCore
import Tracing
import VLLMClient

/// What the gateway keeps of one call while client keys, the access log, metrics or tracing are on: its key (whose
/// stream it gives back at the end), model, upstream, tokens and timings; at the end it charges
/// the key its tokens and writes the access log line. Lives on the call's event loop.
final class CallRecord: CallAccount {
  /// Monotonic nanoseconds. The log's wall clock time is read at the end and taken back by the
  /// call's duration, so a record holds no Date.
  let startedAt = NIODeadline.now().uptimeNanoseconds
  let traceID: String?
  var keyID: String? = nil
  /// The key whose stream this call holds, once admitted.
  var admittedKey: ClientKey? = nil
  var model = ""
  var upstream: String? = nil
  /// The upstream's id (-1 before one is chosen): what the access log compares first, since two
  /// upstreams' names differ by a slow string comparison each.
  var upstreamID = -1
  /// Times its stream moved to another upstream part way (StreamingUpstreamCall).
  var migrations = 0
  var promptTokens = 0
  var completionTokens = 0
  var firstEventAt: UInt64 = 0
  var lastEventAt: UInt64 = 0
  /// The method's log, metrics and tracer.
  let recording: MethodRecording

  /// The call's spans, while tracing is on.
  let trace: CallTrace?

  init(call: ServerCall, recording: MethodRecording) {
    self.recording = recording
    trace = recording.tracer.map { CallTrace(tracer: $0, call: call) }
    traceID =
      if let trace { trace.traceID } else if recording.accessLog != nil {
        call.metadata.first("traceparent").flatMap(Self.traceID(of:))
      } else { nil }
    recording.metrics?.callStarted()
  }

  /// The call's request went to `upstream` (after any failover).
  func routed(to upstream: Upstream) {
    self.upstream = upstream.name
    upstreamID = upstream.id
    trace?.routed(to: upstream.name)
  }

  /// vLLM's whole answer arrived at `receivedAt` (monotonic nanoseconds).
  func replyArrived(_ body: [UInt8], at receivedAt: UInt64) {
    if firstEventAt == 0 { firstEventAt = receivedAt }
    trace?.noteFinishReasons(in: body)
  }

  /// An upstream request ended with `outcome`, having used `usage`: the tokens are added (the
  /// call's key is charged them at its end), and the trace's upstream span ends.
  func upstreamFinished(_ outcome: VLLMOutcome, usage: TokenUsage) {
    promptTokens = promptTokens.saturatingAdd(usage.prompt)
    completionTokens = completionTokens.saturatingAdd(usage.completion)
    trace?.upstreamFinished(outcome, usage: usage)
  }

  func callEnded(_ code: Status.Code) {
    // A stream that moved counts some tokens as completion rather than prompt; the sum stays
    // what the upstreams reported.
    admittedKey?.release(charging: promptTokens.saturatingAdd(completionTokens))
    admittedKey = nil
    let now = NIODeadline.now().uptimeNanoseconds
    recording.accessLog?.write(self, status: code.name, endedAt: now)
    recording.metrics?.callEnded(self, status: code.name, endedAt: now)
    trace?.ended(code)
  }

  /// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`).
  static func traceID(of traceparent: String) -> String? {
    let parts = traceparent.split(separator: "-")
    guard parts.count >= 4, parts[1].count == 32 else { return nil }
    return String(parts[1])
  }
}
