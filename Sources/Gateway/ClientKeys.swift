import Crypto
import GRPCServer
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// The client keys a gateway accepts and what each may spend. A call presents its key as
/// `authorization: Bearer <key>` or `x-api-key: <key>`; the key's SHA-256 is compared with
/// every known one in constant time. Limits are this replica's own.
public final class ClientKeys: Sendable {
  private let current: NIOLockedValueBox<Generation>
  /// The current generation's number, read without the lock by every call that presents its
  /// connection's proven key (the lock cost about 60 instructions a call, callgrind).
  private let currentNumber = Atomic<Int>(0)

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
      currentNumber.store(current.number, ordering: .releasing)
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
        (call.account as? CallRecord)?.keyID = known.rule.id
        return nil
      }
      return Status(
        .unauthenticated, "this gateway needs a client key: send `authorization: Bearer <key>` or `x-api-key: <key>`")
    }
    let found: ClientKey
    // A connection's calls present the same key, mostly: the one it already proved is compared
    // (in constant time) instead of hashing it again, which took 2,500 instructions a call. Only
    // the generation's number is read for that, not its keys (a retain and release each).
    if let proven = call.connectionContext as? ProvenKey, proven.generation == currentNumber.load(ordering: .acquiring),
      presented.equals(proven.presented)
    {
      found = proven.key
    } else {
      let generation = current.withLockedValue { $0 }
      let presentedBytes = presented.bytes
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
    (call.account as? CallRecord)?.keyID = found.id
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

  /// The key from `authorization: Bearer <key>` or `x-api-key: <key>`, without the spaces around
  /// it. Read in place over the header's UTF-8: lowercasing and trimming Strings cost a few
  /// allocations a call, copying the bytes to an array one more, and walking a Substring's UTF-8
  /// view by its indices about 40 instructions a byte (callgrind).
  static func presentedKey(_ metadata: Metadata) -> PresentedKey? {
    let (authorization, apiKey, _) = metadata.first("authorization", "x-api-key")
    if let authorization {
      let utf8 = authorization.utf8
      let bytes = utf8.span
      if bytes.count > bearer.count, startsWithBearer(bytes),
        let key = trimmingSpaces(bytes, bearer.count..<bytes.count)
      {
        return PresentedKey(header: authorization, range: key)
      }
    }
    if let apiKey {
      let utf8 = apiKey.utf8
      let bytes = utf8.span
      if let key = trimmingSpaces(bytes, 0..<bytes.count) { return PresentedKey(header: apiKey, range: key) }
    }
    return nil
  }

  /// A key as a call presented it: the header value it came in, and where in its UTF-8.
  struct PresentedKey {
    let header: String
    let range: Range<Int>

    /// Its bytes, copied: to hash it, once a connection.
    var bytes: [UInt8] {
      Array(header.utf8.dropFirst(range.lowerBound).prefix(range.count))
    }

    /// Whether it is `known`, in a time that depends on the lengths only.
    func equals(_ known: [UInt8]) -> Bool {
      guard known.count == range.count else { return false }
      let utf8 = header.utf8
      let bytes = utf8.span
      var difference: UInt8 = 0
      var at = range.lowerBound
      for knownByte in known {
        difference |= knownByte ^ bytes[at]
        at &+= 1
      }
      return difference == 0
    }
  }

  /// "bearer " (letters in any case, then one space).
  private static let bearer: InlineArray<7, UInt8> = [0x62, 0x65, 0x61, 0x72, 0x65, 0x72, 0x20]

  private static func startsWithBearer(_ bytes: Span<UInt8>) -> Bool {
    for index in bearer.indices {
      let expected = bearer[index]
      let actual = bytes[index]
      guard expected == UInt8(ascii: " ") ? actual == expected : actual | 0x20 == expected else { return false }
    }
    return true
  }

  /// `range` without the spaces at its ends; nil when nothing else is left.
  private static func trimmingSpaces(_ bytes: Span<UInt8>, _ range: Range<Int>) -> Range<Int>? {
    var start = range.lowerBound
    var end = range.upperBound
    while start < end && bytes[start] == UInt8(ascii: " ") { start &+= 1 }
    while end > start && bytes[end &- 1] == UInt8(ascii: " ") { end &-= 1 }
    return start < end ? start..<end : nil
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
  /// A standard library Mutex (a futex): NIO's lock, a pthread mutex, cost about 40 instructions
  /// more for each of the two a call takes (callgrind).
  private let spending: Mutex<Spending>

  struct Spending {
    var requests: RefillingBucket?
    var tokens: RefillingBucket?
    var streams = 0
  }

  init(rule: ClientKeyRule, now: UInt64) {
    self.rule = rule
    self.id = rule.id
    self.sha256 = rule.sha256
    self.spending = Mutex(
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
    let refusal = spending.withLock { spending -> (String, Double)? in
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
    return spending.withLock { spending in
      spending.requests?.refill(now: now)
      spending.tokens?.refill(now: now)
      return (spending.requests?.level, spending.tokens?.level, spending.streams)
    }
  }

  /// Gives back the stream `admit` took and charges the call's tokens: one lock at the call's
  /// end, where charging and releasing apart took two.
  func release(charging tokens: Int) {
    spending.withLock { spending in
      spending.streams -= 1
      if tokens > 0, var bucket = spending.tokens {
        bucket.charge(Double(tokens), now: NIODeadline.now().uptimeNanoseconds)
        spending.tokens = bucket
      }
    }
  }

  private static func format(_ value: Double) -> String {
    value == value.rounded() ? String(Int(value)) : String(value)
  }
}
