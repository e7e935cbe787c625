import Fleet
import NIOCore

extension GatewayConfiguration {
  /// The fleet this configuration describes.
  public var fleetPlan: FleetPlan {
    var plan = FleetPlan(upstreams: upstreams)
    plan.generationPolicy = generationPolicy ?? .prefix
    plan.poolingPolicy = poolingPolicy ?? .leastLoad
    plan.health = health
    if let retries = failover.maxRetries { plan.maximumFailovers = retries }
    if let initial = failover.backoffInitialMilliseconds { plan.failoverBackoff = .milliseconds(Int64(initial)) }
    if let maximum = failover.backoffMaxMilliseconds { plan.maximumFailoverBackoff = .milliseconds(Int64(maximum)) }
    if let seconds = discoveryIntervalSeconds { plan.discoveryInterval = Self.seconds(seconds) }
    return plan
  }
}
