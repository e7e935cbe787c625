import ProtoJSON

/// The run of an access log line between its time and its counts, `,"method":…,"model":…,"key":…,
/// "upstream":…,"status":"OK","prompt_tokens":`, which mostly repeats: written out the first time
/// its values come, then copied whole. Escaped member by member and copied as five runs, it cost
/// about 1,000 instructions a line (callgrind); one run is one copy. Several runs are kept, since
/// a fleet spreads one client's calls over its upstreams: with only the last line's run, each
/// call routed to another upstream than the call before wrote its run anew (8 upstreams, least
/// load: nearly every call).
struct AccessLogLabels {
  /// The values of one run, and the run.
  private struct Run {
    let recording: MethodRecording
    let model: String
    let key: String?
    let upstream: String?
    let upstreamID: Int
    let migrations: Int
    let status: String
    let json: [UInt8]

    /// The upstream first, by its id: the value that changes most from one call to the next,
    /// and two names that differ took a call to the string comparison's slow path to tell apart
    /// (about 25 instructions a run passed over). Equal ids have the one name, compared at once.
    func holds(
      _ recording: MethodRecording, _ model: String, _ key: String?, _ upstream: String?, _ upstreamID: Int,
      _ migrations: Int, _ status: String
    ) -> Bool {
      upstreamID == self.upstreamID && upstream == self.upstream && recording === self.recording
        && model == self.model && key == self.key && migrations == self.migrations && status == self.status
    }
  }

  /// The most runs kept: a fleet's upstreams times the few statuses most calls end with. Past
  /// it, the oldest run made gives way.
  static let capacity = 32
  private var runs: [Run] = []
  private var current = 0
  private var oldest = 0

  /// The run for the values `set` was last given, from its comma to the `"prompt_tokens":` that
  /// ends it.
  var json: [UInt8] { runs.isEmpty ? [] : runs[current].json }

  /// Makes `json` the run for these values.
  mutating func set(
    recording: MethodRecording, model: String, key: String?, upstream: String?, upstreamID: Int,
    migrations: Int, status: String
  ) {
    if current < runs.count, runs[current].holds(recording, model, key, upstream, upstreamID, migrations, status) {
      return
    }
    let found = runs.firstIndex { $0.holds(recording, model, key, upstream, upstreamID, migrations, status) }
    if let found {
      current = found
      return
    }
    let run = Run(
      recording: recording, model: model, key: key, upstream: upstream, upstreamID: upstreamID, migrations: migrations,
      status: status,
      json: Self.write(
        recording: recording, model: model, key: key, upstream: upstream, migrations: migrations,
        status: status))
    if runs.count < Self.capacity {
      runs.append(run)
      current = runs.count - 1
    } else {
      runs[oldest] = run
      current = oldest
      oldest = (oldest + 1) % Self.capacity
    }
  }

  private enum Keys {
    static let model = JSONWriter.Key(plain: "model")
    static let key = JSONWriter.Key(plain: "key")
    static let upstream = JSONWriter.Key(plain: "upstream")
    static let migrations = JSONWriter.Key(plain: "migrations")
    static let status = JSONWriter.Key(plain: "status")
    static let promptTokens = JSONWriter.Key(plain: "prompt_tokens")
  }

  private static func write(
    recording: MethodRecording, model: String, key: String?, upstream: String?, migrations: Int, status: String
  ) -> [UInt8] {
    // The run follows the time, so it opens with a comma; the writer puts the rest between members.
    var json = [UInt8(ascii: ",")]
    json.reserveCapacity(128)
    JSONWriter.appending(to: &json) { writer in
      writer.raw(recording.accessLogMember)
      writer.member(Keys.model, model)
      if let key { writer.member(Keys.key, key) }
      if let upstream { writer.member(Keys.upstream, upstream) }
      if migrations > 0 {
        writer.key(Keys.migrations)
        writer.int(Int64(migrations))
      }
      writer.member(Keys.status, status)
      writer.key(Keys.promptTokens)
    }
    return json
  }
}
