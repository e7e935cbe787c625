import NIOCore
import Testing

@testable import GRPCServer

@Suite struct FrameBoundaryTrackerTests {
  private static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

  private static func frame(type: UInt8, flags: UInt8, length: Int) -> [UInt8] {
    [UInt8(length >> 16), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), type, flags, 0, 0, 0, 1]
      + [UInt8](repeating: 0, count: length)
  }

  private static func feed(_ bytes: [UInt8], byteByByte: Bool) -> [Bool] {
    var tracker = FrameBoundaryTracker()
    var states: [Bool] = []
    if byteByByte {
      for byte in bytes {
        [byte].withUnsafeBytes { tracker.consume($0) }
        states.append(tracker.isMidRequestHead)
      }
    } else {
      bytes.withUnsafeBytes { tracker.consume($0) }
      states.append(tracker.isMidRequestHead)
    }
    return states
  }

  @Test func wholeFramesLeaveNoRequestHeadOpen() {
    let input =
      Self.preface + Self.frame(type: 0x4, flags: 0, length: 6) + Self.frame(type: 0x1, flags: 0x4, length: 40)
      + Self.frame(type: 0x0, flags: 0x1, length: 100)
    #expect(Self.feed(input, byteByByte: false) == [false])
  }

  @Test func partsOfThePrefaceAFrameHeaderOrAHeadersFrameAreMidRequestHead() {
    #expect(Self.feed(Array(Self.preface.prefix(10)), byteByByte: false) == [true])
    #expect(Self.feed(Self.preface + [0, 0, 6, 4], byteByByte: false) == [true])
    let headers = Self.frame(type: 0x1, flags: 0x4, length: 20)
    let states = Self.feed(Self.preface + headers, byteByByte: true)
    // Mid-way everywhere but at the two boundaries: the preface's end and the frame's.
    let boundaries = states.indices.filter { !states[$0] }
    #expect(boundaries == [Self.preface.count - 1, states.count - 1])
  }

  @Test func aPartialDataFrameIsNotARequestHead() {
    let data = Self.frame(type: 0x0, flags: 0, length: 100)
    #expect(Self.feed(Self.preface + Array(data.prefix(50)), byteByByte: false) == [false])
  }

  /// However the bytes are cut, the state at each cut is the one byte-by-byte feeding reaches
  /// there: frame headers read whole in place and collected across cuts agree.
  @Test func anyCutsGiveTheStatesOfByteByByteFeeding() {
    var random = SystemRandomNumberGenerator()
    for _ in 0..<50 {
      var input = Self.preface
      var priorityFrames = 0
      for _ in 0..<Int.random(in: 1...12, using: &random) {
        let type = [0x0, 0x1, 0x2, 0x4, 0x8, 0x9].randomElement(using: &random)!
        if type == 0x2 { priorityFrames += 1 }
        input += Self.frame(
          type: UInt8(type), flags: Bool.random(using: &random) ? 0x4 : 0,
          length: Int.random(in: 0...40, using: &random))
      }
      let reference = Self.feed(input, byteByByte: true)
      var tracker = FrameBoundaryTracker()
      var offset = 0
      while offset < input.count {
        let end = min(input.count, offset + Int.random(in: 1...30, using: &random))
        input[offset..<end].withUnsafeBytes { tracker.consume($0) }
        #expect(tracker.isMidRequestHead == reference[end - 1], "cut at \(end) of \(input.count)")
        offset = end
      }
      // Every PRIORITY frame is counted once, wherever the cuts fell (the flood defence's count).
      #expect(tracker.priorityFrames == priorityFrames)
    }
  }

  @Test func aHeaderBlockStaysOpenUntilItsContinuationEndsIt() {
    let start = Self.preface + Self.frame(type: 0x1, flags: 0, length: 10)
    #expect(Self.feed(start, byteByByte: false) == [true])
    let ended = start + Self.frame(type: 0x9, flags: 0x4, length: 10)
    #expect(Self.feed(ended, byteByByte: false) == [false])
  }
}

@Suite struct TokenBucketTests {
  @Test func allowsTheBurstThenTheRate() {
    var bucket = TokenBucket(burst: 3, perSecond: 10, now: 0)
    var taken: [Bool] = []
    for _ in 0..<4 { taken.append(bucket.take(now: 0)) }
    taken.append(bucket.take(now: 100_000_000))  // 0.1 s refills one token
    taken.append(bucket.take(now: 100_000_000))
    #expect(taken == [true, true, true, false, true, false])
  }
}

@Suite struct PingPolicyTests {
  @Test func thirdStrikeWithoutCallsIsTooMany() {
    var policy = PingPolicy(minimumInterval: .minutes(5), permitsWithoutCalls: false)
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    do {
      let allowed = policy.pingReceived(openCalls: 0, now: start)
      #expect(allowed)
    }
    do {
      let allowed = policy.pingReceived(openCalls: 0, now: start + .seconds(1))
      #expect(allowed)
    }
    do {
      let allowed = policy.pingReceived(openCalls: 0, now: start + .seconds(2))
      #expect(allowed)
    }
    do {
      let allowed = policy.pingReceived(openCalls: 0, now: start + .seconds(3))
      #expect(!allowed)
    }
  }

  @Test func dataSentBetweenPingsClearsTheStrikes() {
    var policy = PingPolicy(minimumInterval: .minutes(5), permitsWithoutCalls: false)
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    for second in 0..<10 {
      policy.resetsStrikes = true
      do {
        let allowed = policy.pingReceived(openCalls: 1, now: start + .seconds(Int64(second)))
        #expect(allowed)
      }
    }
  }

  @Test func pingsAtTheAllowedIntervalAreFine() {
    var policy = PingPolicy(minimumInterval: .seconds(10), permitsWithoutCalls: true)
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    for step in 0..<10 {
      do {
        let allowed = policy.pingReceived(openCalls: 0, now: start + .seconds(Int64(step * 10)))
        #expect(allowed)
      }
    }
  }
}
