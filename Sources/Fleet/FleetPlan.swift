import NIOCore

/// What a fleet is made of, as its configuration says; a fleet can take a new plan at any time
/// (SIGHUP) without dropping a call.
public struct FleetPlan: Sendable {
  public var upstreams: [UpstreamSpec]
  public var generationPolicy: RoutingPolicyName = .prefix
  public var poolingPolicy: RoutingPolicyName = .leastLoad
  public var health = HealthPolicy()
  /// Other upstreams tried at most for a request that reached none.
  public var maximumFailovers = 2
  /// The wait before each failover after the first (which is at once), doubling up to the maximum.
  public var failoverBackoff: TimeAmount = .milliseconds(25)
  public var maximumFailoverBackoff: TimeAmount = .milliseconds(500)
  /// How often models are discovered and host names resolved again.
  public var discoveryInterval: TimeAmount = .seconds(10)

  public init(upstreams: [UpstreamSpec]) {
    self.upstreams = upstreams
  }
}

/// One configured upstream. An http:// URL whose host name resolves to several addresses (a
/// Kubernetes headless Service) stands for one upstream per address, resolved again every
/// discovery interval.
public struct UpstreamSpec: Sendable, Equatable {
  public var name: String
  public var url: String
  public var apiKey: String?
  public var weight: Double
  /// The models it serves; nil for whatever its /v1/models lists.
  public var models: [String]?
  public var extraHeaders: [String: String]
  /// The bound on a request to it when the call has none.
  public var requestTimeout: TimeAmount?
  /// For an https:// upstream: the PEM CA its certificate must chain to (else the system's).
  public var caFile: String?

  public init(
    name: String, url: String, apiKey: String? = nil, weight: Double = 1, models: [String]? = nil,
    extraHeaders: [String: String] = [:], requestTimeout: TimeAmount? = nil, caFile: String? = nil
  ) {
    self.caFile = caFile
    self.name = name
    self.url = url
    self.apiKey = apiKey
    self.weight = weight
    self.models = models
    self.extraHeaders = extraHeaders
    self.requestTimeout = requestTimeout
  }

  /// The same upstream at `address` instead of its host name.
  func at(address: String) -> UpstreamSpec {
    var copy = self
    copy.url = HostName.replacingHost(of: url, with: address)
    copy.name = "\(name) (\(address))"
    return copy
  }

  /// The host name to resolve, for an http:// URL whose host is not an address already.
  var hostToResolve: String? {
    guard url.hasPrefix("http://"), let host = HostName.host(of: url), !HostName.isAddress(host) else { return nil }
    return host
  }
}

/// Hosts in URLs, as far as the fleet needs them.
enum HostName {
  /// The host of `scheme://host[:port][/path]`, without IPv6 brackets.
  static func host(of url: String) -> String? {
    guard let schemeEnd = url.range(of: "://") else { return nil }
    let rest = url[schemeEnd.upperBound...]
    let authority = rest.prefix { $0 != "/" }
    if authority.hasPrefix("[") {
      guard let close = authority.firstIndex(of: "]") else { return nil }
      return String(authority[authority.index(after: authority.startIndex)..<close])
    }
    return String(authority.prefix { $0 != ":" })
  }

  static func replacingHost(of url: String, with address: String) -> String {
    guard let schemeEnd = url.range(of: "://"), let host = host(of: url) else { return url }
    let rest = url[schemeEnd.upperBound...]
    let written = rest.hasPrefix("[") ? "[\(host)]" : host
    let replacement = address.contains(":") ? "[\(address)]" : address
    return String(url[..<schemeEnd.upperBound]) + replacement + rest.dropFirst(written.count)
  }

  static func isAddress(_ host: String) -> Bool {
    host.contains(":") || (host.split(separator: ".").count == 4 && host.allSatisfy { $0.isNumber || $0 == "." })
  }
}
