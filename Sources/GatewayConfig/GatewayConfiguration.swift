import Fleet
import Gateway
import NIOCore

/// What a configuration file sets: the upstreams of the fleet, how calls are routed among them,
/// how their health is judged, and the gateway's limits. Flags and the environment override it.
///
///     listen: 0.0.0.0:50051
///     upstreams:
///       - name: llama-a
///         url: http://10.0.0.1:8000
///         api_key: env.VLLM_KEY        # "env.NAME" reads the environment, as Bifrost does
///         weight: 2
///         models: [llama-3.1-8b]       # optional: else what its /v1/models lists
///     routing: {generation: prefix, pooling: least_load}
///     health: {check_interval_seconds: 2, consecutive_failures_to_eject: 5}
///     limits: {max_upstream_requests: 20000, upstream_stall_timeout_seconds: 300}
///     web: {enabled: true, cors_origins: [https://app.example.com]}   # gRPC-Web and Connect
///     stream_migration: {enabled: true, max_per_call: 3, models: [llama-3.1-8b]}  # models: optional
///     providers:                       # Bifrost's provider blocks, as they are
///       vllm: {keys: [...], network_config: {...}}
public struct GatewayConfiguration: Sendable {
  public struct Limits: Sendable, Equatable {
    public var maxUpstreamRequests: Int?
    public var maxUpstreamRequestsPerConnection: Int?
    public var upstreamIdleConnections: Int?
    public var upstreamIdleTimeoutSeconds: Double?
    public var upstreamStallTimeoutSeconds: Double?
  }

  public struct Failover: Sendable, Equatable {
    /// Other upstreams tried at most for a request that reached none (Bifrost's max_retries).
    public var maxRetries: Int?
    public var backoffInitialMilliseconds: Int?
    public var backoffMaxMilliseconds: Int?
  }

  public var listen: String?
  /// The upstreams, as the fleet takes them.
  public var upstreams: [UpstreamSpec] = []
  public var generationPolicy: RoutingPolicyName?
  public var poolingPolicy: RoutingPolicyName?
  public var health = HealthPolicy()
  public var limits = Limits()
  public var failover = Failover()
  /// How often each upstream's /v1/models is read and host names resolved again.
  public var discoveryIntervalSeconds: Double?
  /// Client keys; empty when the gateway is open.
  public var keys: [ClientKeyRule] = []
  /// Whether health and reflection need a key too.
  public var protectsStandardServices = false
  /// Where the access log goes ("-": standard error); nil for none.
  public var accessLog: String?
  /// TLS files: certificate chain, key, and the CA of client certificates (mTLS).
  public var tls: (certificate: String, key: String, clientCA: String?)?
  /// Whether gRPC-Web and Connect are served next to gRPC (on unless the file says otherwise).
  public var webEnabled = true
  /// Browser origins allowed to call (CORS); `*` for any.
  public var corsOrigins: [String] = []
  /// Streams that move to another upstream when theirs fails part way.
  public var streamMigration = StreamMigrationPolicy()

  public init() {}
}

extension GatewayConfiguration {
  /// Reads a configuration file's text (JSON or YAML); `environment` resolves "env.NAME" values.
  public static func parse(_ text: String, environment: [String: String]) throws(ConfigError) -> GatewayConfiguration {
    var root = try ConfigReader(ConfigNode.parse(text), path: "$", ignoring: ["$schema"])
    var configuration = GatewayConfiguration()
    configuration.listen = try root.string("listen")
    configuration.accessLog = try root.string("access_log")
    if var tls = try root.object("tls") {
      guard let certificate = try tls.string("certificate"), let key = try tls.string("key") else {
        throw ConfigError(path: tls.path, reason: "needs certificate and key (PEM files)")
      }
      configuration.tls = (certificate, key, try tls.string("client_ca"))
      try tls.finish()
    }
    if var migration = try root.object("stream_migration") {
      configuration.streamMigration.isEnabled = try migration.bool("enabled") ?? true
      configuration.streamMigration.maximumPerCall =
        try migration.integer("max_per_call", minimum: 0) ?? configuration.streamMigration.maximumPerCall
      configuration.streamMigration.models = try migration.strings("models").map(Set.init)
      try migration.finish()
    }
    if var web = try root.object("web") {
      configuration.webEnabled = try web.bool("enabled") ?? true
      configuration.corsOrigins = try web.strings("cors_origins") ?? []
      try web.finish()
    }
    if let upstreams = try root.objects("upstreams") {
      for var upstream in upstreams {
        configuration.upstreams.append(try readUpstream(&upstream, environment: environment))
        try upstream.finish()
      }
    }
    if var routing = try root.object("routing") {
      configuration.generationPolicy = try policy(&routing, "generation")
      configuration.poolingPolicy = try policy(&routing, "pooling")
      try routing.finish()
    }
    if var health = try root.object("health") {
      if let seconds = try health.seconds("check_interval_seconds", minimum: 0.1) {
        configuration.health.checkInterval = Self.seconds(seconds)
      }
      if let seconds = try health.seconds("discovery_interval_seconds", minimum: 0.1) {
        configuration.discoveryIntervalSeconds = seconds
      }
      if let seconds = try health.seconds("check_timeout_seconds", minimum: 0.1) {
        configuration.health.checkTimeout = Self.seconds(seconds)
      }
      if let count = try health.integer("consecutive_failures_to_eject", minimum: 1) {
        configuration.health.consecutiveFailuresToEject = count
      }
      if let seconds = try health.seconds("base_ejection_seconds", minimum: 0.1) {
        configuration.health.baseEjection = Self.seconds(seconds)
      }
      if let seconds = try health.seconds("max_ejection_seconds", minimum: 0.1) {
        configuration.health.maximumEjection = Self.seconds(seconds)
      }
      try health.finish()
    }
    if var limits = try root.object("limits") {
      configuration.limits.maxUpstreamRequests = try limits.integer("max_upstream_requests", minimum: 1)
      configuration.limits.maxUpstreamRequestsPerConnection = try limits.integer(
        "max_upstream_requests_per_connection", minimum: 1)
      configuration.limits.upstreamIdleConnections = try limits.integer("upstream_idle_connections", minimum: 0)
      configuration.limits.upstreamIdleTimeoutSeconds = try limits.seconds(
        "upstream_idle_timeout_seconds", minimum: 0.001)
      configuration.limits.upstreamStallTimeoutSeconds = try limits.seconds(
        "upstream_stall_timeout_seconds", minimum: 0)
      try limits.finish()
    }
    if var auth = try root.object("auth") {
      for var key in try auth.objects("keys") ?? [] {
        configuration.keys.append(try ClientKeyReader.read(&key, environment: environment))
        try key.finish()
      }
      configuration.protectsStandardServices = try auth.bool("protect_health_and_reflection") ?? false
      try auth.finish()
      var ids = Set<String>()
      for (index, key) in configuration.keys.enumerated() where !ids.insert(key.id).inserted {
        throw ConfigError(path: "$.auth.keys[\(index)].id", reason: "\"\(key.id)\" names two keys")
      }
    }
    if var providers = try root.object("providers") {
      for name in providers.keys {
        guard var provider = try providers.object(name, ignoring: BifrostProvider.otherProviderFields) else { continue }
        let block = try BifrostProvider.read(&provider, name: name, environment: environment)
        configuration.upstreams += block.upstreams
        configuration.failover = block.failover
        try provider.finish()
      }
      try providers.finish()
    }
    try root.finish()
    var names = Set<String>()
    for (index, upstream) in configuration.upstreams.enumerated() where !names.insert(upstream.name).inserted {
      throw ConfigError(path: "$.upstreams[\(index)].name", reason: "\"\(upstream.name)\" names two upstreams")
    }
    return configuration
  }

  private static func readUpstream(_ reader: inout ConfigReader, environment: [String: String]) throws(ConfigError)
    -> UpstreamSpec
  {
    guard let written = try reader.string("url") else {
      throw ConfigError(path: reader.path, reason: "an upstream needs a url")
    }
    let url = try resolve(written, environment, path: reader.path("url"))
    try validateURL(url, path: reader.path("url"))
    var upstream = UpstreamSpec(name: try reader.string("name") ?? url, url: url)
    if let key = try reader.string("api_key") {
      upstream.apiKey = try resolve(key, environment, path: reader.path("api_key"))
    }
    upstream.weight = try reader.number("weight", minimum: 0.001) ?? 1
    upstream.models = try reader.strings("models")
    upstream.extraHeaders = Dictionary(try reader.stringMap("extra_headers") ?? [], uniquingKeysWith: { $1 })
    upstream.requestTimeout = try reader.seconds("request_timeout_seconds", minimum: 0.001).map(Self.seconds)
    upstream.caFile = try reader.string("ca_file")
    return upstream
  }

  private static func policy(_ reader: inout ConfigReader, _ key: String) throws(ConfigError) -> RoutingPolicyName? {
    guard let name = try reader.string(key) else { return nil }
    guard let policy = RoutingPolicyName(rawValue: name) else {
      let known = RoutingPolicyName.allCases.map(\.rawValue).joined(separator: ", ")
      throw ConfigError(path: reader.path(key), reason: "unknown policy \"\(name)\" (known: \(known))")
    }
    return policy
  }

  static func seconds(_ value: Double) -> TimeAmount {
    .nanoseconds(Int64(value * 1e9))
  }

  /// "env.NAME" is the environment variable NAME (Bifrost's convention); anything else is itself.
  static func resolve(_ value: String, _ environment: [String: String], path: String) throws(ConfigError) -> String {
    guard value.hasPrefix("env.") else { return value }
    let name = String(value.dropFirst(4))
    guard let resolved = environment[name] else {
      throw ConfigError(path: path, reason: "the environment variable \(name) is not set")
    }
    return resolved
  }

  public static func validateURL(_ url: String, path: String) throws(ConfigError) {
    guard url.hasPrefix("http://") || url.hasPrefix("https://"), url.count > 8 else {
      throw ConfigError(path: path, reason: "must be an http:// or https:// URL, not \"\(url)\"")
    }
  }
}
