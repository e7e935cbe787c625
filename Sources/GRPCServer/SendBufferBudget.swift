import Atomics

/// The bytes all connections together may hold for clients that read slowly. Connections reserve
/// it in grants rather than byte by byte, so the shared counter is touched only when a
/// connection's buffers grow or shrink by a whole grant.
public final class SendBufferBudget: Sendable {
  static let grant = 256 * 1024
  private let available: ManagedAtomic<Int>
  public let limit: Int

  public init(limit: Int) {
    self.limit = limit
    self.available = ManagedAtomic(limit)
  }

  /// Takes one grant; false when the server's budget is spent.
  func reserveGrant() -> Bool {
    var current = available.load(ordering: .relaxed)
    while current >= Self.grant {
      let (exchanged, original) = available.weakCompareExchange(
        expected: current, desired: current - Self.grant, ordering: .relaxed)
      if exchanged { return true }
      current = original
    }
    return false
  }

  func release(grants: Int) {
    guard grants > 0 else { return }
    available.wrappingIncrement(by: grants * Self.grant, ordering: .relaxed)
  }

  /// Bytes currently reserved by connections.
  public var reservedBytes: Int { limit - available.load(ordering: .relaxed) }
}
