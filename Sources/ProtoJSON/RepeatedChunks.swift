import Synchronization

/// The chunk tail (`RepeatedChunk`) the streams of one kind (an operation's) learnt last, for the
/// next stream to start with: what follows a chunk's head does not name its stream, so a new
/// stream's first token can be written from it at once. Learning it again in every stream cost
/// two general translations and a learning, about 11,000 instructions a stream (callgrind), a
/// stream's first tokens translated the slow way. What it holds is checked on every use, as in
/// the stream that learnt it: a stream whose chunks differ misses twice, drops it and learns its
/// own, which the streams after it then start with.
public final class RepeatedChunks: Sendable {
  private let latest = Mutex<RepeatedChunk?>(nil)

  public init() {}

  /// What a new stream starts with: the last chunk a stream learnt, with the new stream's own
  /// counts, or none.
  public func forNewStream() -> RepeatedChunk {
    latest.withLock { $0 }.map { $0.forNewStream() } ?? RepeatedChunk()
  }

  /// A stream learnt `chunk`: the streams after it start with it.
  public func learnt(_ chunk: RepeatedChunk) {
    guard chunk.isKept else { return }
    latest.withLock { $0 = chunk }
  }
}
