import Testing

@testable import GRPCServer

/// The names a request's fields are recognised by, and the word-at-a-time comparison that
/// recognises them: every byte of every literal matters, in every position of the words.
@Suite struct RequestFieldNameTests {
  private static let known: [(String, RequestFieldName)] = [
    (":method", .method), (":scheme", .scheme), (":path", .path), (":authority", .authority),
    ("content-type", .contentType), ("te", .te), ("grpc-timeout", .grpcTimeout), ("grpc-encoding", .grpcEncoding),
    ("grpc-accept-encoding", .grpcAcceptEncoding), ("host", .host), ("content-length", .contentLength),
    ("connection", .connectionSpecific), ("keep-alive", .connectionSpecific), ("upgrade", .connectionSpecific),
    ("proxy-connection", .connectionSpecific), ("transfer-encoding", .connectionSpecific), ("accept", .accept),
    ("x-api-key", .apiKey), ("user-agent", .userAgent), ("traceparent", .traceparent),
    ("x-request-id", .requestID), ("authorization", .authorization), ("accept-encoding", .acceptEncoding),
  ]

  private static func field(_ name: [UInt8]) -> RequestFieldName {
    name.withUnsafeBytes { RequestFieldName($0) }
  }

  @Test func everyKnownNameIsRecognisedAndIsAValidName() {
    for (name, expected) in Self.known {
      #expect(Self.field(Array(name.utf8)) == expected, "\(name)")
      if !expected.isPseudoHeader {
        #expect(Array(name.utf8).withUnsafeBytes(HTTPFieldSyntax.isValidName), "\(name)")
      }
    }
  }

  @Test func aNameOneByteAwayIsNotRecognised() {
    for (name, _) in Self.known {
      let bytes = Array(name.utf8)
      for index in bytes.indices {
        var changed = bytes
        changed[index] ^= 0x20  // another case, or `-` as `\r` and `:` as `\x1a`
        #expect(Self.field(changed) == (changed.first == UInt8(ascii: ":") ? .unknownPseudoHeader : .other))
        changed = bytes
        changed[index] &+= 1
        #expect(Self.field(changed) == (changed.first == UInt8(ascii: ":") ? .unknownPseudoHeader : .other))
      }
      #expect(
        Self.field(bytes + [UInt8(ascii: "s")]) == (bytes.first == UInt8(ascii: ":") ? .unknownPseudoHeader : .other))
      #expect(Self.field(Array(bytes.dropLast())) == (bytes.first == UInt8(ascii: ":") ? .unknownPseudoHeader : .other))
    }
    #expect(Self.field(Array(":status".utf8)) == .unknownPseudoHeader)
    #expect(Self.field(Array(":protocol".utf8)) == .unknownPseudoHeader)
    #expect(Self.field([]) == .other)
  }

  @Test func matchesComparesEveryByteAtEveryLength() {
    let alphabet = Array("abcdefghijklmnopqrstu".utf8)
    let literals: [StaticString] = [
      "", "a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg", "abcdefgh", "abcdefghi", "abcdefghijklmnop",
      "abcdefghijklmnopq", "abcdefghijklmnopqrstu",
    ]
    for literal in literals {
      let bytes = Array(alphabet.prefix(literal.utf8CodeUnitCount))
      #expect(bytes.withUnsafeBytes { $0.matches(literal) }, "\(literal)")
      for index in bytes.indices {
        var changed = bytes
        changed[index] = UInt8(ascii: "Z")
        #expect(!changed.withUnsafeBytes { $0.matches(literal) }, "\(literal) at \(index)")
      }
      #expect(!(bytes + [0]).withUnsafeBytes { $0.matches(literal) })
      if !bytes.isEmpty { #expect(!Array(bytes.dropLast()).withUnsafeBytes { $0.matches(literal) }) }
    }
  }
}
