import GRPCServer

/// Text for a status a client receives, held short: an upstream's error can quote what the
/// client sent (vLLM's "The model `…` does not exist" holds the model name twice), and the
/// message goes out twice, in `grpc-message` and in the google.rpc.Status of
/// `grpc-status-details-bin`. A 32 KB model name made trailers past what grpcio accepts (16 KiB
/// of metadata) and past nghttp2's 64 KiB header block, which it does not send: the call hung.
enum StatusText {
  /// A status message's most UTF-8 bytes, the mark included.
  static let mostMessageBytes = 1024
  /// A model name's, quoted in a message of the gateway's own.
  static let mostValueBytes = 256

  /// `text` if it fits in `most` bytes; else its beginning, cut where a code point starts, and
  /// the mark (`TruncatedText`).
  static func shortened(_ text: String, to most: Int = mostMessageBytes) -> String {
    TruncatedText.fitting(text, in: most)
  }
}
