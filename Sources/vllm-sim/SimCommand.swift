import ArgumentParser
import Foundation
import GRPCServer
import NIOCore
import NIOPosix
import VLLMSimulator

@main
struct SimCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "vllm-sim",
    abstract:
      "A vLLM look-alike for demos, tests and benchmarks: vLLM's OpenAI-compatible HTTP API with deterministic output.",
    discussion: """
      Requests may ask for a failure in a "vllm_sim" object in their JSON body, for example \
      {"vllm_sim": {"fault": "stream_error", "after": 2, "status": 500}}. Faults: http_error, \
      error_200, stream_error, drop, stall, truncate, detail. Pacing per request: \
      "tokens_per_second" and "ttft_ms"; "stamp": true makes every token ~T + 19 digits + ~, the \
      sim's CLOCK_MONOTONIC nanoseconds when the chunk was written. GET /stats counts requests and \
      aborted generations; POST /stats/reset clears them. GET /metrics has vLLM's gauges and counters \
      (requests running and waiting, KV-cache usage, prefix-cache queries and hits, prompt and \
      generation tokens). POST /admin/models with {"models": ["a", "b"]} replaces the served models.
      """)

  @Option(help: "Port to listen on.")
  var port: Int = 8000

  @Option(help: "Address to bind.")
  var host: String = "127.0.0.1"

  @Option(help: "The served model name (default: sim-model); with --models, served first.")
  var model: String? = nil

  @Option(help: "Comma-separated served model names; the first is the default for requests that name none.")
  var models: String? = nil

  @Option(help: "Milliseconds before the first token.")
  var ttftMs: Double = 0

  @Option(help: "Tokens per second after the first (0: all at once).")
  var tokensPerSecond: Double = 0

  @Option(help: "Tokens generated when a request sets no limit.")
  var defaultMaxTokens: Int = 16

  @Flag(help: "Answer /v1/responses with 404, like an upstream without the Responses API.")
  var noResponses = false

  @Flag(help: "Answer /v1/rerank with 404, like servers that only have /rerank.")
  var noV1Rerank = false

  @Option(help: "Length of embedding vectors.")
  var embeddingDimensions: Int = 384

  @Option(
    help: "Generations running at once; later ones wait, the wait part of their time to first token (0: no limit).")
  var maxNumSeqs: Int = 0

  @Option(help: "Prompt tokens the prefix cache keeps, least recently used evicted first (0: no prefix cache).")
  var prefixCacheTokens: Int = SimulatorConfiguration.defaultKVCacheTokens

  @Option(help: "Milliseconds of prefill added to the time to first token per prompt token not in the prefix cache.")
  var prefillMsPerToken: Double = 0

  @Option(help: "Event-loop threads.")
  var threads: Int = 1

  func run() async throws {
    var configuration = SimulatorConfiguration()
    let listed = (models ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    let names = [model].compactMap { $0 } + listed
    var seen = Set<String>()
    configuration.models = names.filter { !$0.isEmpty && seen.insert($0).inserted }
    if configuration.models.isEmpty { configuration.models = ["sim-model"] }
    configuration.timeToFirstToken = .nanoseconds(Int64(ttftMs * 1_000_000))
    configuration.tokensPerSecond = tokensPerSecond
    configuration.defaultMaxTokens = defaultMaxTokens
    configuration.servesResponses = !noResponses
    configuration.servesV1Rerank = !noV1Rerank
    configuration.embeddingDimensions = embeddingDimensions
    configuration.maxNumSeqs = maxNumSeqs
    configuration.prefixCacheTokens = prefixCacheTokens
    configuration.prefillMillisecondsPerToken = prefillMsPerToken
    let termination = await TerminationSignal.trap()  // before the port opens
    let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
    let channel = try await SimulatorServer.start(
      host: host, port: port, configuration: configuration, stats: SimulatorStats(), group: group)
    let address = channel.localAddress.map { "\($0)" } ?? "\(host):\(port)"
    print("vllm-sim listening on \(address) serving \(configuration.models.joined(separator: ", "))")
    await termination.wait()
    try await channel.close()
    try await group.shutdownGracefully()
  }
}
