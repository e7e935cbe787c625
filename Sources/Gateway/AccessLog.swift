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
  private let pending = NIOLockedValueBox(Pending())
  private let queue = DispatchQueue(label: "access-log")

  /// The lines not written out yet, and what the last line held that the next one mostly
  /// repeats. Each line is written straight into `lines` under the lock: a line of its own,
  /// copied in, cost an allocation and a copy.
  private struct Pending {
    var lines: [UInt8] = []
    var model = RepeatedMember(Keys.model)
    var key = RepeatedMember(Keys.key)
    var upstream = RepeatedMember(Keys.upstream)
    var status = RepeatedMember(Keys.status)
    var timestamp = UTCTimestamp.Reused()
  }

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
  private static func flushPeriodically(pending: NIOLockedValueBox<Pending>, output: FileHandle, queue: DispatchQueue) {
    queue.asyncAfter(deadline: .now() + .milliseconds(100)) {
      let bytes = pending.withLockedValue { pending -> [UInt8] in
        let taken = pending.lines
        pending.lines.removeAll(keepingCapacity: true)
        return taken
      }
      if !bytes.isEmpty { output.write(Data(bytes)) }
      flushPeriodically(pending: pending, output: output, queue: queue)
    }
  }

  /// The line's keys, made once.
  private enum Keys {
    static let time = JSONWriter.Key(plain: "time")
    static let method = JSONWriter.Key(plain: "method")
    static let model = JSONWriter.Key(plain: "model")
    static let key = JSONWriter.Key(plain: "key")
    static let upstream = JSONWriter.Key(plain: "upstream")
    static let migrations = JSONWriter.Key(plain: "migrations")
    static let status = JSONWriter.Key(plain: "status")
    static let promptTokens = JSONWriter.Key(plain: "prompt_tokens")
    static let completionTokens = JSONWriter.Key(plain: "completion_tokens")
    static let duration = JSONWriter.Key(plain: "duration_ms")
    static let firstToken = JSONWriter.Key(plain: "ttft_ms")
    static let traceID = JSONWriter.Key(plain: "trace_id")
  }

  /// A method's `"method":"<path>"` member, written once per route (MethodRecording) rather
  /// than escaped on every line.
  static func methodMember(_ method: String) -> [UInt8] {
    var member = JSONWriter(capacity: method.utf8.count + 16)
    member.member(Keys.method, method)
    return member.bytes
  }

  func write(_ record: CallRecord, status: String, endedAt: UInt64) {
    // When the call started, on the wall clock: now, less its duration.
    let startedAtMilliseconds =
      Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) - Int64((endedAt &- record.startedAt) / 1_000_000)
    pending.withLockedValue { pending in
      pending.timestamp.set(millisecondsSince1970: startedAtMilliseconds)
      JSONWriter.appending(to: &pending.lines) { json in
        json.beginObject()
        json.key(Keys.time)
        json.raw(pending.timestamp.quotedJSON)
        json.raw(record.recording.accessLogMember)
        pending.model.write(record.model, to: &json)
        if let key = record.keyID { pending.key.write(key, to: &json) }
        if let upstream = record.upstream { pending.upstream.write(upstream, to: &json) }
        if record.migrations > 0 {
          json.key(Keys.migrations)
          json.int(Int64(record.migrations))
        }
        pending.status.write(status, to: &json)
        json.key(Keys.promptTokens)
        json.int(Int64(record.promptTokens))
        json.key(Keys.completionTokens)
        json.int(Int64(record.completionTokens))
        json.key(Keys.duration)
        json.thousandths((endedAt &- record.startedAt) / 1000)
        if record.firstEventAt > 0 {
          json.key(Keys.firstToken)
          json.thousandths((record.firstEventAt &- record.startedAt) / 1000)
        }
        if let trace = record.traceID { json.member(Keys.traceID, trace) }
        json.endObject()
      }
      pending.lines.append(UInt8(ascii: "\n"))
    }
  }

  /// Writes out what is pending (at shutdown).
  public func flush() {
    queue.sync {
      let bytes = pending.withLockedValue { pending -> [UInt8] in
        let taken = pending.lines
        pending.lines.removeAll()
        return taken
      }
      if !bytes.isEmpty { output.write(Data(bytes)) }
    }
  }
}
