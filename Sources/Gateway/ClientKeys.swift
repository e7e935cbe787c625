import Crypto
import GRPCServer
import NIOConcurrencyHelpers
import NIOCore

/// The client keys a gateway accepts and what each may spend. A call presents its key as
/// `authorization: Bearer <key>` or `x-api-key: <key>`; the key's SHA-256 is compared with
/// every known one in constant time. Limits are this replica's own.
public final class ClientKeys: Sendable {
  private let current: NIOLockedValueBox<Generation>

  /// The keys, and how many times they were replaced: a connection's remembered key counts only
  /// for the generation it was checked against.
  struct Generation {
    var keys: [ClientKey]
    var number = 0
  }

  public init(_ rules: [ClientKeyRule]) {
    let now = NIODeadline.now().uptimeNanoseconds
    current = NIOLockedValueBox(Generation(keys: rules.map { ClientKey(rule: $0, now: now) }))
  }

  /// Takes the rules of a reloaded configuration: a key whose rule is unchanged keeps what it has
  /// spent; a changed, new or removed one starts afresh or goes (its calls in flight finish).
  public func replace(with rules: [ClientKeyRule]) {
    let now = NIODeadline.now().uptimeNanoseconds
    current.withLockedValue { current in
      current.keys = rules.map { rule in current.keys.first { $0.rule == rule } ?? ClientKey(rule: rule, now: now) }
      current.number += 1
    }
  }

  var keys: [ClientKey] { current.withLockedValue { $0.keys } }

  /// The gate of every protected method: the key the call presents, or UNAUTHENTICATED.
  public func authenticate(_ call: ServerCall) -> Status? {
    guard let presented = Self.presentedKey(call.metadata) else {
      // A client certificate (mTLS) names its client by its common name.
      if let name = call.peerCertificateCommonName,
        let known = keys.first(where: { $0.rule.certificateCommonName == name })
      {
        call.clientIdentity = known
        (call.serviceContext as? CallRecord)?.keyID = known.rule.id
        return nil
      }
      return Status(
        .unauthenticated, "this gateway needs a client key: send `authorization: Bearer <key>` or `x-api-key: <key>`")
    }
    let generation = current.withLockedValue { $0 }
    let found: ClientKey
    // A connection's calls present the same key, mostly: the one it already proved is compared
    // (in constant time) instead of hashing it again, which took 2,500 instructions a call.
    if let proven = call.connectionContext as? ProvenKey, proven.generation == generation.number,
      Self.constantTimeEqual(proven.presented, presented)
    {
      found = proven.key
    } else {
      let presentedBytes = Array(presented)
      let digest = SHA256.hash(data: presentedBytes)
      var match: ClientKey? = nil
      // Every stored digest is compared in full, whichever matches, so the time taken says
      // nothing about which key (or how much of one) was close.
      for key in generation.keys {
        if let stored = key.sha256, Self.constantTimeEqual(stored, digest) { match = key }
      }
      guard let match else { return Status(.unauthenticated, "the client key is not known to this gateway") }
      found = match
      call.connectionContext = ProvenKey(presented: presentedBytes, key: match, generation: generation.number)
    }
    call.clientIdentity = found
    (call.serviceContext as? CallRecord)?.keyID = found.id
    return nil
  }

  /// The key a connection proved, for its next calls, while the keys are not replaced.
  final class ProvenKey {
    let presented: [UInt8]
    let key: ClientKey
    let generation: Int

    init(presented: [UInt8], key: ClientKey, generation: Int) {
      self.presented = presented
      self.key = key
      self.generation = generation
    }
  }

  /// The key's bytes from `authorization: Bearer <key>` or `x-api-key: <key>`, without the spaces
  /// around it. Read in place over the header's UTF-8: lowercasing and trimming Strings cost a
  /// few allocations a call, and copying the bytes to an array one more.
  static func presentedKey(_ metadata: Metadata) -> Substring.UTF8View? {
    if let authorization = metadata.first("authorization") {
      let bytes = Substring(authorization).utf8
      let scheme = "bearer ".utf8
      if bytes.count > scheme.count,
        zip(bytes, scheme).allSatisfy({ $1 == UInt8(ascii: " ") ? $0 == $1 : $0 | 0x20 == $1 })
      {
        let key = trimmingSpaces(bytes.dropFirst(scheme.count))
        if !key.isEmpty { return key }
      }
    }
    if let key = metadata.first("x-api-key").map({ trimmingSpaces(Substring($0).utf8) }), !key.isEmpty { return key }
    return nil
  }

  private static func trimmingSpaces(_ bytes: Substring.UTF8View) -> Substring.UTF8View {
    guard let first = bytes.firstIndex(where: { $0 != UInt8(ascii: " ") }),
      let last = bytes.lastIndex(where: { $0 != UInt8(ascii: " ") })
    else { return bytes[bytes.endIndex...] }
    return bytes[first...last]
  }

  /// Whether two byte strings are equal, in a time that depends on their lengths only.
  static func constantTimeEqual(_ known: [UInt8], _ presented: Substring.UTF8View) -> Bool {
    guard known.count == presented.count else { return false }
    var difference: UInt8 = 0
    for (knownByte, presentedByte) in zip(known, presented) { difference |= knownByte ^ presentedByte }
    return difference == 0
  }

  static func constantTimeEqual(_ stored: [UInt8], _ digest: SHA256.Digest) -> Bool {
    guard stored.count == SHA256.Digest.byteCount else { return false }
    var difference: UInt8 = 0
    for (storedByte, digestByte) in zip(stored, digest) { difference |= storedByte ^ digestByte }
    return difference == 0
  }
}

/// One known key and what it has spent.
public final class ClientKey: Sendable {
  public let rule: ClientKeyRule
  /// The rule's id and digest, kept apart: reading them through `rule` copied the whole rule,
  /// a dozen retains and releases on every call.
  let id: String
  let sha256: [UInt8]?
  private let spending: NIOLockedValueBox<Spending>

  struct Spending {
    var requests: RefillingBucket?
    var tokens: RefillingBucket?
    var streams = 0
  }

  init(rule: ClientKeyRule, now: UInt64) {
    self.rule = rule
    self.id = rule.id
    self.sha256 = rule.sha256
    self.spending = NIOLockedValueBox(
      Spending(
        requests: rule.requestsPerMinute.map { RefillingBucket(perMinute: $0, now: now) },
        tokens: rule.tokensPerMinute.map { RefillingBucket(perMinute: $0, now: now) }))
  }

  /// Whether a call for `model` may start now; when it may, it holds one of the key's streams
  /// until `release()`.
  func admit(model: String) -> StatusError? {
    if let allowed = rule.models, !allowed.contains(model) {
      let named = model.isEmpty ? "the default model" : "the model `\(model)`"
      return StatusError(
        .permissionDenied,
        "the client key \(rule.id) may not use \(named); it may use: \(allowed.joined(separator: ", "))")
    }
    let now = NIODeadline.now().uptimeNanoseconds
    let refusal = spending.withLockedValue { spending -> (String, Double)? in
      if let limit = rule.maxConcurrentStreams, spending.streams >= limit {
        return ("the client key \(rule.id) already has \(limit) calls in flight, its limit", 1)
      }
      if var tokens = spending.tokens {
        let wait = tokens.waitForPositive(now: now)
        spending.tokens = tokens
        if wait > 0 {
          return (
            "the client key \(rule.id) has used its \(Self.format(rule.tokensPerMinute ?? 0)) tokens a minute", wait
          )
        }
      }
      if var requests = spending.requests {
        let wait = requests.take(1, now: now)
        spending.requests = requests
        if let wait {
          return (
            "the client key \(rule.id) has made its \(Self.format(rule.requestsPerMinute ?? 0)) requests a minute", wait
          )
        }
      }
      spending.streams += 1
      return nil
    }
    guard let (message, wait) = refusal else { return nil }
    return RetryInfo.resourceExhausted(message, retryAfterSeconds: wait)
  }

  /// What the key has left now: requests and tokens in its buckets (nil without that limit), and
  /// its calls in flight.
  var available: (requests: Double?, tokens: Double?, streams: Int) {
    let now = NIODeadline.now().uptimeNanoseconds
    return spending.withLockedValue { spending in
      spending.requests?.refill(now: now)
      spending.tokens?.refill(now: now)
      return (spending.requests?.level, spending.tokens?.level, spending.streams)
    }
  }

  func release() {
    spending.withLockedValue { $0.streams -= 1 }
  }

  /// Charges a finished call's tokens.
  func charge(tokens: Int) {
    guard rule.tokensPerMinute != nil, tokens > 0 else { return }
    let now = NIODeadline.now().uptimeNanoseconds
    spending.withLockedValue { $0.tokens?.charge(Double(tokens), now: now) }
  }

  private static func format(_ value: Double) -> String {
    value == value.rounded() ? String(Int(value)) : String(value)
  }
}
