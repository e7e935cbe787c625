import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

@main
struct ProbeCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "stream-latency-probe",
    abstract: "Times every streamed chunk of many concurrent streams, from vllm-sim's stamps.",
    discussion: """
      Ask vllm-sim for stamped tokens ("vllm_sim": {"stamp": true} in the request body): each \
      token then carries the CLOCK_MONOTONIC time the sim wrote it. On the same machine the \
      probe subtracts it from its own clock on receipt: the one-way delay of each chunk, whatever \
      proxies lie between. Also the time to first token: first stamp received minus request sent.
      """)

  @Argument(help: "h2 (cleartext, prior knowledge) or http1 (one connection per stream).")
  var mode: String

  @Option(help: "Server address.")
  var host = "127.0.0.1"

  @Option(help: "Server port.")
  var port: Int

  @Option(help: "Request path.")
  var path = "/v1/chat/completions"

  @Option(name: .customLong("header"), help: "An extra request header, \"name: value\" (repeatable).")
  var headers: [String] = []

  @Option(help: "File holding the request body.")
  var body: String

  @Flag(help: "A stream succeeds only with trailers carrying grpc-status 0.")
  var grpc = false

  @Option(help: "Connections (http1: one per stream, so connections × streams per connection).")
  var connections = 1

  @Option(help: "Streams open at once on each HTTP/2 connection.")
  var streamsPerConnection = 1

  @Option(help: "http1: streams (and so connections) in all, instead of the product of the two above.")
  var streams: Int? = nil

  @Option(help: "Spread the first streams' starts evenly over this many seconds (0: all at once).")
  var rampSeconds: Double = 0

  @Option(
    help: """
      Keep every stream slot busy for this many seconds after the ramp, each starting a new \
      stream when its last one ends; only streams started after the ramp are measured.
      """)
  var durationSeconds: Double? = nil

  @Option(help: "Seconds before unfinished streams count as failed.")
  var timeout: Int64 = 120

  @Option(help: "Where to write the JSON summary.")
  var output: String? = nil

  func run() async throws {
    guard let mode = ProbePlan.Mode(rawValue: mode) else {
      throw ValidationError("mode must be h2 or http1")
    }
    let headers = try self.headers.map { line -> (name: String, value: String) in
      guard let colon = line.firstIndex(of: ":") else { throw ValidationError("header without a colon: \(line)") }
      return (
        String(line[..<colon]).trimmingCharacters(in: .whitespaces),
        String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
      )
    }
    var plan = ProbePlan(
      mode: mode, host: host, port: port, path: path, headers: headers,
      body: Array(try Data(contentsOf: URL(fileURLWithPath: body))), grpc: grpc, connections: connections,
      streamsPerConnection: streamsPerConnection, rampSeconds: rampSeconds, durationSeconds: durationSeconds,
      timeoutSeconds: timeout)
    switch mode {
    case .http1:
      plan.connections = streams ?? connections * streamsPerConnection
      plan.streamsPerConnection = 1
    case .h2:
      guard streams == nil else { throw ValidationError("--streams is for http1; use --connections for h2") }
    }

    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let finalPlan = plan
    let loop = group.next()
    let done = loop.makePromise(of: LatencySummary.self)
    loop.execute { ProbeRun(plan: finalPlan, eventLoop: loop, done: done).start() }
    let summary = try await done.futureResult.get()
    try await group.shutdownGracefully()

    if let output {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      try encoder.encode(summary).write(to: URL(fileURLWithPath: output))
    }
    print(summary.line)
  }
}
