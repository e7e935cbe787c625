import Dispatch
import Foundation
import NIOConcurrencyHelpers
import ProtoJSON

/// One JSON line per call, for Loki or Elastic: when, which method and model, which client key
/// and upstream, the status, tokens, duration and time to first token, and the trace id. Lines
/// are gathered under a lock and written by a background queue every 100 ms, so an event loop
/// never waits on the disk. No prompt or answer text is ever written.
public final class AccessLog: Sendable {
  private let output: FileHandle
  private let pending = NIOLockedValueBox<[UInt8]>([])
  private let queue = DispatchQueue(label: "access-log")

  /// Writes to `path`, appending ("-" or nil: standard error).
  public init(path: String?) throws {
    if let path, path != "-" {
      if !FileManager.default.fileExists(atPath: path) {
        FileManager.default.createFile(atPath: path, contents: nil)
      }
      guard let handle = FileHandle(forWritingAtPath: path) else {
        throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
      }
      handle.seekToEndOfFile()
      output = handle
    } else {
      output = FileHandle.standardError
    }
    Self.flushPeriodically(pending: pending, output: output, queue: queue)
  }

  /// Every 100 ms on the log's own queue, for as long as the process lives.
  private static func flushPeriodically(pending: NIOLockedValueBox<[UInt8]>, output: FileHandle, queue: DispatchQueue) {
    queue.asyncAfter(deadline: .now() + .milliseconds(100)) {
      let bytes = pending.withLockedValue { buffer -> [UInt8] in
        let taken = buffer
        buffer.removeAll(keepingCapacity: true)
        return taken
      }
      if !bytes.isEmpty { output.write(Data(bytes)) }
      flushPeriodically(pending: pending, output: output, queue: queue)
    }
  }

  func write(_ record: CallRecord, status: String, endedAt: UInt64) {
    var json = JSONWriter(capacity: 320)
    json.beginObject()
    json.key(plain: "time")
    json.string(Self.timestamp(record.wallClockStart))
    json.key(plain: "method")
    json.string(record.method)
    json.key(plain: "model")
    json.string(record.model)
    if let key = record.keyID {
      json.key(plain: "key")
      json.string(key)
    }
    if let upstream = record.upstream {
      json.key(plain: "upstream")
      json.string(upstream)
    }
    json.key(plain: "status")
    json.string(status)
    json.key(plain: "prompt_tokens")
    json.int(Int64(record.promptTokens))
    json.key(plain: "completion_tokens")
    json.int(Int64(record.completionTokens))
    json.key(plain: "duration_ms")
    json.double(Double(endedAt &- record.startedAt) / 1e6)
    if record.firstEventAt > 0 {
      json.key(plain: "ttft_ms")
      json.double(Double(record.firstEventAt &- record.startedAt) / 1e6)
    }
    if let trace = record.traceID {
      json.key(plain: "trace_id")
      json.string(trace)
    }
    json.endObject()
    var line = json.bytes
    line.append(UInt8(ascii: "\n"))
    pending.withLockedValue { $0.append(contentsOf: line) }
  }

  /// Writes out what is pending (at shutdown).
  public func flush() {
    queue.sync {
      let bytes = pending.withLockedValue { buffer -> [UInt8] in
        let taken = buffer
        buffer.removeAll()
        return taken
      }
      if !bytes.isEmpty { output.write(Data(bytes)) }
    }
  }

  private static let timestampStyle = Date.ISO8601FormatStyle.iso8601.year().month().day()
    .timeZone(separator: .omitted).time(includingFractionalSeconds: true)

  private static func timestamp(_ date: Date) -> String {
    date.formatted(timestampStyle)
  }
}
