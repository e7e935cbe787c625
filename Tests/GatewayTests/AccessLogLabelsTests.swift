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
        recording: recording, model: model, key: key, upstream: upstream, migrations: migrations, status: status)
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
}
