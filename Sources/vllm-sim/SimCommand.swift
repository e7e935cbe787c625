import ArgumentParser
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
      aborted generations; POST /stats/reset clears them.
      """)

  @Option(help: "Port to listen on.")
  var port: Int = 8000

  @Option(help: "Address to bind.")
  var host: String = "127.0.0.1"

  @Option(help: "The served model name.")
  var model: String = "sim-model"

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

  @Option(help: "Event-loop threads.")
  var threads: Int = 1

  func run() async throws {
    var configuration = SimulatorConfiguration()
    configuration.model = model
    configuration.timeToFirstToken = .nanoseconds(Int64(ttftMs * 1_000_000))
    configuration.tokensPerSecond = tokensPerSecond
    configuration.defaultMaxTokens = defaultMaxTokens
    configuration.servesResponses = !noResponses
    configuration.servesV1Rerank = !noV1Rerank
    configuration.embeddingDimensions = embeddingDimensions
    let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
    let channel = try await SimulatorServer.start(
      host: host, port: port, configuration: configuration, stats: SimulatorStats(), group: group)
    print("vllm-sim listening on \(channel.localAddress.map { "\($0)" } ?? "\(host):\(port)") serving \(model)")
    _ = await TerminationSignal.wait()
    try await channel.close()
    try await group.shutdownGracefully()
  }
}
