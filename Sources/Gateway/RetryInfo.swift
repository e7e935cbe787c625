import GRPCServer
import ProtoJSON

/// RESOURCE_EXHAUSTED with a google.rpc.RetryInfo in `grpc-status-details-bin`, so clients know
/// when to come back (gRPC's standard for rate limits).
enum RetryInfo {
  static func resourceExhausted(_ message: String, retryAfterSeconds: Double) -> StatusError {
    // At most about 31 years (and a NaN as that): a key charged absurd token counts by an
    // upstream has a wait past Int64's seconds, and converting it trapped.
    let wait = retryAfterSeconds.isNaN ? 1e9 : min(max(retryAfterSeconds, 0.001), 1e9)
    var duration = ProtoWireWriter()
    let seconds = Int64(wait.rounded(.down))
    let nanos = Int64((wait - Double(seconds)) * 1e9)
    if seconds > 0 {
      duration.tag(1, .varint)
      duration.varint(UInt64(seconds))
    }
    if nanos > 0 {
      duration.tag(2, .varint)
      duration.varint(UInt64(nanos))
    }
    var info = ProtoWireWriter()
    info.lengthDelimited(1, duration.bytes)
    var status = ProtoWireWriter()
    status.tag(1, .varint)
    status.varint(UInt64(Status.Code.resourceExhausted.rawValue))
    status.lengthDelimited(2, Array(message.utf8))
    let any = status.begin(3)
    status.lengthDelimited(1, Array("type.googleapis.com/google.rpc.RetryInfo".utf8))
    status.lengthDelimited(2, info.bytes)
    status.end(any)
    var trailers = Metadata()
    trailers.add("grpc-status-details-bin", binary: status.bytes)
    return StatusError(.resourceExhausted, message, trailers: trailers)
  }
}
