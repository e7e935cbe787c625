import Testing

@testable import Gateway

/// The run of a log line that holds its method, model, key, upstream, moves and status is made
/// anew whenever one of them changes and reused while none does: every line gets its own values,
/// escaped, with the commas a JSON writer would put.
@Suite struct AccessLogLabelsTests {
  @Test func eachLineGetsItsOwnValues() {
    let chat = MethodRecording(method: "/p.S/Chat", accessLog: nil, metrics: nil, tracer: nil)
    let other = MethodRecording(method: "/p.S/Other", accessLog: nil, metrics: nil, tracer: nil)
    var labels = AccessLogLabels()
    var runs: [String] = []
    let calls: [(MethodRecording, String, String?, String?, Int, String)] = [
      (chat, "m", "k", "u", 0, "OK"),
      (chat, "m", "k", "u", 0, "OK"),
      (other, "m", "k", "u", 0, "OK"),
      (other, #"q"uote"#, "k", "u", 0, "OK"),
      (other, #"q"uote"#, nil, "u", 0, "OK"),
      (other, #"q"uote"#, nil, nil, 0, "OK"),
      (other, #"q"uote"#, nil, nil, 2, "OK"),
      (other, #"q"uote"#, nil, nil, 2, "CANCELLED"),
      (chat, "\u{1}", "k", "u", 0, "OK"),
    ]
    for (recording, model, key, upstream, migrations, status) in calls {
      labels.set(
        recording: recording, model: model, key: key, upstream: upstream, upstreamID: upstream == nil ? -1 : 0,
        migrations: migrations, status: status)
      runs.append(String(decoding: labels.json, as: UTF8.self))
    }
    #expect(
      runs == [
        #","method":"/p.S/Chat","model":"m","key":"k","upstream":"u","status":"OK","prompt_tokens":"#,
        #","method":"/p.S/Chat","model":"m","key":"k","upstream":"u","status":"OK","prompt_tokens":"#,
        #","method":"/p.S/Other","model":"m","key":"k","upstream":"u","status":"OK","prompt_tokens":"#,
        #","method":"/p.S/Other","model":"q\"uote","key":"k","upstream":"u","status":"OK","prompt_tokens":"#,
        #","method":"/p.S/Other","model":"q\"uote","upstream":"u","status":"OK","prompt_tokens":"#,
        #","method":"/p.S/Other","model":"q\"uote","status":"OK","prompt_tokens":"#,
        #","method":"/p.S/Other","model":"q\"uote","migrations":2,"status":"OK","prompt_tokens":"#,
        #","method":"/p.S/Other","model":"q\"uote","migrations":2,"status":"CANCELLED","prompt_tokens":"#,
        #","method":"/p.S/Chat","model":"\u0001","key":"k","upstream":"u","status":"OK","prompt_tokens":"#,
      ])
  }

  /// A fleet spreads calls over its upstreams: runs are kept for several, and past the most kept
  /// the oldest gives way, every line still getting its own values.
  @Test func runsOfManyUpstreamsInTurnEachHoldTheirOwn() {
    let chat = MethodRecording(method: "/p.S/Chat", accessLog: nil, metrics: nil, tracer: nil)
    var labels = AccessLogLabels()
    for count in [8, AccessLogLabels.capacity + 5] {
      for round in 0..<3 {
        for index in 0..<count {
          let upstream = "upstream-\(index)"
          let status = round == 2 && index % 3 == 0 ? "UNAVAILABLE" : "OK"
          labels.set(
            recording: chat, model: "m", key: "k", upstream: upstream, upstreamID: index, migrations: 0, status: status)
          #expect(
            String(decoding: labels.json, as: UTF8.self)
              == #","method":"/p.S/Chat","model":"m","key":"k","upstream":""# + upstream + #"","status":""# + status
              + #"","prompt_tokens":"#)
        }
      }
    }
  }
}
