import ArgumentParser
import Fleet
import Foundation
import GatewayConfig

/// The flags that override the configuration file, and how the two combine: flags over the file
/// over the environment's VLLM_BASE_URL over the defaults.
struct ConfigurationOverrides: Sendable {
  var config: String?
  var upstream: [String]
  var apiKey: String?
  var listen: String?
  var routingPolicy: String?
  var poolingPolicy: String?
  var maxUpstreamRequests: Int?
  var maxUpstreamRequestsPerConnection: Int?
  var upstreamIdleConnections: Int?
  var upstreamIdleTimeout: Double?
  var upstreamStallTimeout: Double?
  var accessLog: String?
  var corsOrigins: [String] = []

  func configurationPath(environment: [String: String]) -> String? {
    config ?? environment["VLLM_GRPC_GATEWAY_CONFIG"]
  }

  /// The configuration file's settings, with the flags and the environment over them.
  func effectiveConfiguration(environment: [String: String]) throws -> GatewayConfiguration {
    var configuration = GatewayConfiguration()
    if let path = configurationPath(environment: environment) {
      let text: String
      do {
        text = try String(contentsOfFile: path, encoding: .utf8)
      } catch {
        throw ValidationError("cannot read the configuration file \(path): \(error.localizedDescription)")
      }
      do {
        configuration = try GatewayConfiguration.parse(text, environment: environment)
      } catch {
        throw ValidationError("the configuration file \(path) is refused: \(error)")
      }
    }
    let key = apiKey ?? environment["VLLM_API_KEY"]
    if !upstream.isEmpty {
      configuration.upstreams = upstream.map { .init(name: $0, url: $0, apiKey: key) }
    } else if configuration.upstreams.isEmpty {
      let url = environment["VLLM_BASE_URL"] ?? "http://localhost:8000"
      configuration.upstreams = [.init(name: url, url: url, apiKey: key)]
    }
    if let listen { configuration.listen = listen }
    if let accessLog { configuration.accessLog = accessLog }
    configuration.corsOrigins += corsOrigins
    if let routingPolicy { configuration.generationPolicy = RoutingPolicyName(rawValue: routingPolicy) }
    if let poolingPolicy { configuration.poolingPolicy = RoutingPolicyName(rawValue: poolingPolicy) }
    if let maxUpstreamRequests { configuration.limits.maxUpstreamRequests = maxUpstreamRequests }
    if let maxUpstreamRequestsPerConnection {
      configuration.limits.maxUpstreamRequestsPerConnection = maxUpstreamRequestsPerConnection
    }
    if let upstreamIdleConnections { configuration.limits.upstreamIdleConnections = upstreamIdleConnections }
    if let upstreamIdleTimeout { configuration.limits.upstreamIdleTimeoutSeconds = upstreamIdleTimeout }
    if let upstreamStallTimeout { configuration.limits.upstreamStallTimeoutSeconds = upstreamStallTimeout }
    return configuration
  }

}
