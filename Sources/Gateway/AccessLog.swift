import Dispatch
import Foundation
import Logging
import ProtoJSON
import Synchronization

/// One JSON line per call, for Loki or Elastic: when, which method and model, which client key
/// and upstream, the status, tokens, duration and time to first token, and the trace id. Lines
/// are gathered under a lock and written by a background queue 100 ms after the first of them,
/// so an event loop never waits on the disk. No prompt or answer text is ever written.
public final class AccessLog: Sendable {
  /// Where lines go. Replaced by `reopen()`; read by the log's queue for each write out.
  private let output: Mutex<FileHandle>
  /// The file's path; nil for standard error.
  private let path: String?
  /// A standard library Mutex (a futex): NIO's lock, a pthread mutex, cost about 40 instructions
  /// more a line (callgrind).
  private let pending = Mutex(Pending())
  private let queue = DispatchQueue(label: "access-log")
  /// Whether the last write failed: said once when writes start failing and once when they
  /// work again, not every 100 ms. Only the log's queue touches it.
  private let failing = Atomic<Bool>(false)
  private static let logger = Logger(label: "vllm-grpc-gateway")
  /// The most bytes of lines kept waiting for the writer. A write can block (a FIFO whose reader
  /// stalls, a hung network mount) while every call still ends with a line, and clients choose
  /// how long a line is (its model name): without a bound, the backlog grew until the process
  /// was killed for its memory. Past it, lines are dropped and counted.
  static let mostPendingBytes = 64 << 20

  /// The lines not written out yet, and what the last line held that the next one mostly
  /// repeats. Each line is written straight into `lines` under the lock: a line of its own,
  /// copied in, cost an allocation and a copy.
  private struct Pending {
    var lines: [UInt8] = []
    /// Lines not kept since the last write out, because `lines` had reached `mostPendingBytes`.
    var droppedLines = 0
    /// Whether a write out is due: the first line after one asks for the next. A timer every
    /// 100 ms for the life of the process woke two threads about forty times a second when no
    /// call came (about 1.3 ms of CPU a second, perf); under load it is the same one write out
    /// every 100 ms.
    var writeOutDue = false
    var labels = AccessLogLabels()
    /// The line's opening and its time, `{"time":"…"`, in one run.
    var timestamp = UTCTimestamp.Reused(prefix: Text.opening)
  }

  /// Writes to `path`, appending ("-" or nil: standard error). Opened for appending, not sought
  /// to its end: a pipe or FIFO (a log shipper's) cannot seek, and FileHandle's
  /// `seekToEndOfFile()` ended the process there; appending also keeps lines whole when the file
  /// is truncated under the gateway (logrotate's copytruncate) or shared with another writer.
  public init(path: String?) throws {
    if let path, path != "-" {
      self.path = path
      output = Mutex(try Self.open(path))
    } else {
      self.path = nil
      output = Mutex(FileHandle.standardError)
    }
  }

  private static func open(_ path: String) throws -> FileHandle {
    let descriptor = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    return FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
  }

  /// Opens the file again by its path (SIGHUP), for logrotate's default `create` mode: it renames
  /// the file and makes a new one, and without this every later line went into the renamed
  /// file, which is then compressed or deleted. Lines pending go to the new file. When the path
  /// cannot be opened, the current file stays and the error is said.
  public func reopen() {
    guard let path else { return }
    queue.async {
      do {
        let fresh = try Self.open(path)
        // The old handle is closed when the swap releases it.
        self.output.withLock { $0 = fresh }
        Self.logger.notice("access log reopened", metadata: ["path": "\(path)"])
      } catch {
        Self.logger.error(
          "access log cannot be reopened; lines go on to the file it had",
          metadata: ["path": "\(path)", "error": "\(error)"])
      }
    }
  }

  /// In 100 ms on the log's own queue: what gathers meanwhile goes out in one write.
  private func writeOutSoon() {
    queue.asyncAfter(deadline: .now() + .milliseconds(100)) {
      self.writeOutPending(keepingCapacity: true)
    }
  }

  private func writeOutPending(keepingCapacity: Bool) {
    let (bytes, dropped) = pending.withLock { pending -> ([UInt8], Int) in
      let taken = (pending.lines, pending.droppedLines)
      // The room is kept for the next 100 ms, unless a backlog grew it past a megabyte.
      pending.lines.removeAll(keepingCapacity: keepingCapacity && pending.lines.capacity <= 1 << 20)
      pending.droppedLines = 0
      pending.writeOutDue = false
      return taken
    }
    if dropped > 0 {
      Self.logger.error("access log lines dropped while its writes were behind", metadata: ["lines": "\(dropped)"])
    }
    guard !bytes.isEmpty else { return }
    // Written from the array in place: `Data(bytes)` copied every line once more, ~250
    // instructions a call (callgrind). And a failed write (a full disk, a closed pipe) loses
    // these lines, not the gateway: FileHandle's `write(_: Data)` ends the process on any error.
    var failure: (any Error)? = nil
    let handle = output.withLock { $0 }
    do { try handle.write(contentsOf: bytes) } catch { failure = error }
    // Said only when this write's outcome differs from the last one's.
    guard failing.exchange(failure != nil, ordering: .relaxed) != (failure != nil) else { return }
    if let failure {
      Self.logger.error(
        "access log cannot be written; its lines are dropped until it can", metadata: ["error": "\(failure)"])
    } else {
      Self.logger.notice("access log written again")
    }
  }

  /// What a line is made of around its labels and numbers, made once.
  private enum Text {
    static let opening = Array(#"{"time":"#.utf8)
    static let closing = Array("}\n".utf8)
    static let method = JSONWriter.Key(plain: "method")
    static let traceID = JSONWriter.Key(plain: "trace_id")
  }

  /// A method's `"method":"<path>"` member, written once per route (MethodRecording) rather
  /// than escaped on every line.
  static func methodMember(_ method: String) -> [UInt8] {
    var member = JSONWriter(capacity: method.utf8.count + 16)
    member.member(Text.method, method)
    return member.bytes
  }

  func write(_ record: CallRecord, status: String, endedAt: UInt64) {
    // When the call started, on the wall clock: now, less its duration, rounded down once
    // (rounding both down apart put the start up to a millisecond late, after its first token).
    let elapsed = endedAt &- record.startedAt
    let startedAtMilliseconds = Int64(
      (Date().timeIntervalSince1970 * 1000 - Double(elapsed) / 1_000_000).rounded(.down))
    let duration = elapsed / 1000
    let firstToken = record.firstEventAt > 0 ? (record.firstEventAt &- record.startedAt) / 1000 : nil
    let (startsDropping, asksWriteOut) = pending.withLock { pending -> (Bool, Bool) in
      guard pending.lines.count < Self.mostPendingBytes else {
        pending.droppedLines += 1
        return (pending.droppedLines == 1, false)  // a full backlog has its write out due
      }
      let asksWriteOut = !pending.writeOutDue
      pending.writeOutDue = true
      pending.timestamp.set(millisecondsSince1970: startedAtMilliseconds)
      pending.labels.set(
        recording: record.recording, model: record.model, key: record.keyID, upstream: record.upstream,
        upstreamID: record.upstreamID,
        migrations: record.migrations, status: status)
      // A line is a few runs copied whole and its numbers: ~25 appends through a JSON writer, each
      // checking the shared array's uniqueness and room, cost about 2,300 instructions (callgrind).
      pending.lines.append(contentsOf: pending.timestamp.quotedJSON)
      pending.lines.append(contentsOf: pending.labels.json)
      let trace = record.traceID
      // Without a trace id the line ends in the numbers' own reservation.
      AccessLogNumbers.append(
        to: &pending.lines, promptTokens: record.promptTokens, completionTokens: record.completionTokens,
        duration: duration, firstToken: firstToken, endingLine: trace == nil)
      if let trace {
        pending.lines.append(UInt8(ascii: ","))
        JSONWriter.appending(to: &pending.lines) { json in json.member(Text.traceID, trace) }
        pending.lines.append(contentsOf: Text.closing)
      }
      return (false, asksWriteOut)
    }
    if asksWriteOut { writeOutSoon() }
    if startsDropping {
      Self.logger.error("access log writes are not keeping up; its lines are dropped until they do")
    }
  }

  /// Writes out what is pending (at shutdown), waiting at most `limit` seconds for it: a write can block
  /// for good (a FIFO whose reader stalls, a hung mount), and waiting on it held the process at
  /// shutdown until it was killed. False, and said, when the lines were left unwritten.
  @discardableResult
  public func flush(waitingAtMostSeconds limit: Int = 5) async -> Bool {
    let written = await withCheckedContinuation { continuation in
      let outcome = FirstOutcome(continuation)
      queue.async {
        self.writeOutPending(keepingCapacity: false)
        outcome.resume(returning: true)
      }
      DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(limit)) {
        outcome.resume(returning: false)
      }
    }
    if !written {
      Self.logger.error(
        "access log not written out at shutdown: its write is blocked (a stalled reader?)",
        metadata: ["waited_seconds": "\(limit)", "pending_bytes": "\(pending.withLock { $0.lines.count })"])
    }
    return written
  }

  /// Resumes a continuation with the first outcome given, and ignores the others.
  private final class FirstOutcome: Sendable {
    private let continuation: Mutex<CheckedContinuation<Bool, Never>?>

    init(_ continuation: CheckedContinuation<Bool, Never>) {
      self.continuation = Mutex(continuation)
    }

    func resume(returning value: Bool) {
      continuation.withLock { $0.take() }?.resume(returning: value)
    }
  }
}
