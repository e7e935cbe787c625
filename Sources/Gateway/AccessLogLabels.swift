import ProtoJSON

/// The run of an access log line between its time and its counts, `,"method":…,"model":…,"key":…,
/// "upstream":…,"status":"OK","prompt_tokens":`, which mostly repeats from one call to the next:
/// written out when one of its values changes, else copied whole. Escaped member by member and
/// copied as five runs, it cost about 1,000 instructions a line (callgrind); one run is one copy.
struct AccessLogLabels {
  private var recording: MethodRecording? = nil
  private var model = ""
  private var key: String? = nil
  private var upstream: String? = nil
  private var migrations = 0
  private var status = ""
  /// The run for the values above, from its comma to the `"prompt_tokens":` that ends it.
  private(set) var json: [UInt8] = []

  private enum Keys {
    static let model = JSONWriter.Key(plain: "model")
    static let key = JSONWriter.Key(plain: "key")
    static let upstream = JSONWriter.Key(plain: "upstream")
    static let migrations = JSONWriter.Key(plain: "migrations")
    static let status = JSONWriter.Key(plain: "status")
    static let promptTokens = JSONWriter.Key(plain: "prompt_tokens")
  }

  /// Makes `json` the run for these values.
  mutating func set(
    recording: MethodRecording, model: String, key: String?, upstream: String?, migrations: Int, status: String
  ) {
    guard
      recording !== self.recording || model != self.model || key != self.key || upstream != self.upstream
        || migrations != self.migrations || status != self.status
    else { return }
    self.recording = recording
    self.model = model
    self.key = key
    self.upstream = upstream
    self.migrations = migrations
    self.status = status
    // The run follows the time, so it opens with a comma; the writer puts the rest between members.
    json = [UInt8(ascii: ",")]
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
  }
}
