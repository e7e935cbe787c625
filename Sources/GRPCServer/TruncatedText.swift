/// Text cut short to fit a limit, where a code point starts, and marked so. Status messages can
/// quote what a client sent without bound, and every carrier of one (a header, a google.rpc.Status)
/// has a limit: the transport cuts `grpc-message` by its encoded length, the gateway its own
/// messages by their bytes.
public enum TruncatedText {
  public static let mark = " [truncated]"

  /// `text` itself when its bytes cost at most `most` in all; else its longest beginning that
  /// ends where a code point starts and costs, with the mark, at most `most`. A byte costs what
  /// `cost` says (one, unless the text is to be encoded).
  public static func fitting(_ text: String, in most: Int, cost: (UInt8) -> Int = { _ in 1 }) -> String {
    var total = 0
    for byte in text.utf8 { total += cost(byte) }
    guard total > most else { return text }
    let room = most - mark.utf8.count
    var kept = 0  // the bytes kept: always up to where a code point starts
    var length = 0  // the cost of the bytes before `index`
    for (index, byte) in text.utf8.enumerated() {
      if byte & 0xC0 != 0x80 {
        if length > room { break }
        kept = index
      }
      length += cost(byte)
    }
    return String(decoding: text.utf8.prefix(kept), as: UTF8.self) + mark
  }
}
