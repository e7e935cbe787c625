import GRPCServer
import ProtoJSON
import Testing

@testable import Gateway

/// Figures and text from upstreams and clients that would overflow (a number) or outgrow (a
/// status) what carries them are held, not trapped on or sent too large.
@Suite struct SaturatingArithmeticTests {
  @Test func sumsAndDifferencesAreHeldAtIntsEnds() {
    #expect(Int.max.saturatingAdd(1) == .max)
    #expect(Int.min.saturatingAdd(-1) == .min)
    #expect((Int.max - 5).saturatingAdd(3) == .max - 2)
    #expect(Int.min.saturatingSubtract(1) == .min)
    #expect(Int.max.saturatingSubtract(-1) == .max)
    #expect(0.saturatingSubtract(Int.min) == .max)
    #expect(10.saturatingSubtract(4) == 6)
  }

  /// RetryInfo's wait: ~10^19 seconds (a key charged absurd token counts) or not a number is
  /// written as at most about 31 years, not trapped on converting it to Int64 seconds.
  @Test func aRetryInfoWaitPastInt64sSecondsIsHeld() throws {
    for wait in [1e19, .infinity, .nan, 1e9 + 0.5] {
      let error = RetryInfo.resourceExhausted("slow down", retryAfterSeconds: wait)
      #expect(error.status.code == .resourceExhausted)
      let details = try #require(error.trailers.firstBinary("grpc-status-details-bin"))
      #expect(Self.retrySeconds(in: details) == 1_000_000_000)
    }
    let short = RetryInfo.resourceExhausted("slow down", retryAfterSeconds: 2.5)
    #expect(Self.retrySeconds(in: try #require(short.trailers.firstBinary("grpc-status-details-bin"))) == 2)
  }

  /// google.rpc.Status → details (Any, field 3) → value (field 2): RetryInfo → retry_delay (1) →
  /// seconds (1).
  static func retrySeconds(in status: [UInt8]) -> UInt64? {
    func field(_ number: Int32, of bytes: [UInt8]) -> [UInt8]? {
      var reader = ProtoWireReader(bytes)
      while let field = try? reader.next() {
        if field.number == number {
          return field.wireType == .lengthDelimited ? Array(bytes[field.range]) : nil
        }
      }
      return nil
    }
    guard let any = field(3, of: status), let info = field(2, of: any), let delay = field(1, of: info) else {
      return nil
    }
    var reader = ProtoWireReader(delay)
    while let field = try? reader.next() {
      if field.number == 1 { return field.scalar }
    }
    return nil
  }
}

/// A status's text is held short, cut where a code point starts.
@Suite struct StatusTextTests {
  @Test(arguments: [
    String(repeating: "m", count: 100_000), String(repeating: "é", count: 3_000), String(repeating: "😈", count: 700),
    String(repeating: "a", count: 1_010) + String(repeating: "☺", count: 5),
  ])
  func longTextIsCut(text: String) {
    let short = StatusText.shortened(text)
    #expect(short.utf8.count <= StatusText.mostMessageBytes)
    #expect(short.hasSuffix(TruncatedText.mark))
    let kept = String(short.dropLast(TruncatedText.mark.count))
    #expect(text.hasPrefix(kept) && kept.utf8.count > StatusText.mostMessageBytes - 16)
  }

  @Test func textThatFitsIsKept() {
    let fits = String(repeating: "a", count: StatusText.mostMessageBytes)
    #expect(StatusText.shortened(fits) == fits)
  }

  @Test func anUpstreamErrorQuotingAHugeNameIsShortEverywhere() throws {
    let name = String(repeating: "m", count: 50_000)
    let error = UpstreamStatus.unknownModel(name, served: ["a", "b"])
    #expect(error.status.message.utf8.count <= StatusText.mostMessageBytes)
    let details = try #require(error.trailers.firstBinary("grpc-status-details-bin"))
    #expect(details.count < 2 * StatusText.mostMessageBytes)
  }
}
