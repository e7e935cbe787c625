import Fleet
import NIOCore

extension GatewayConfiguration {
  /// The fleet this configuration describes.
  public var fleetPlan: FleetPlan {
    var plan = FleetPlan(
      upstreams: upstreams.map { definition in
        UpstreamSpec(
          name: definition.name, url: definition.url, apiKey: definition.apiKey, weight: definition.weight,
          models: definition.models, extraHeaders: definition.extraHeaders,
          requestTimeout: definition.requestTimeoutSeconds.map { .nanoseconds(Int64($0 * 1e9)) },
          caFile: definition.caFile)
      })
    plan.generationPolicy = generationPolicy ?? .prefix
    plan.poolingPolicy = poolingPolicy ?? .leastLoad
    plan.health = health
    if let retries = failover.maxRetries { plan.maximumFailovers = retries }
    if let initial = failover.backoffInitialMilliseconds { plan.failoverBackoff = .milliseconds(Int64(initial)) }
    if let maximum = failover.backoffMaxMilliseconds { plan.maximumFailoverBackoff = .milliseconds(Int64(maximum)) }
    if let seconds = discoveryIntervalSeconds { plan.discoveryInterval = .nanoseconds(Int64(seconds * 1e9)) }
    return plan
  }
}
