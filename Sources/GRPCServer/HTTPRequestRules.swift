/// RFC 9113's rules for one request's header fields (sections 8.1.1, 8.2 and 8.3): a request
/// that breaks one is malformed, and its stream is reset with PROTOCOL_ERROR before any handler
/// sees it. nghttp2's HTTP messaging applied these; the server turns that off
/// (`nghttp2_option_set_no_http_messaging`) and applies the same rules here, where the fields are
/// read anyway: nghttp2 spent about 2,560 instructions a unary call on them, tokenizing every
/// name again and checking every byte against its tables; these checks cost about 1,500
/// (callgrind, h2load's unary call), most of it the fields' bytes, eight at a time where they
/// can be.
struct HTTPRequestRules {
  private var seen: Seen = []
  /// The request's `content-length`, or -1 when it gave none.
  private(set) var contentLength = -1
  /// Set by the first field that breaks a rule; the fields after it are not looked at.
  private(set) var isMalformed = false

  private struct Seen: OptionSet {
    let rawValue: UInt16
    static let method = Seen(rawValue: 1 << 0)
    static let scheme = Seen(rawValue: 1 << 1)
    static let path = Seen(rawValue: 1 << 2)
    static let authority = Seen(rawValue: 1 << 3)
    static let host = Seen(rawValue: 1 << 4)
    /// A regular field came: no pseudo-header may follow.
    static let regularField = Seen(rawValue: 1 << 5)
    static let connectMethod = Seen(rawValue: 1 << 6)
    static let optionsMethod = Seen(rawValue: 1 << 7)
    static let httpScheme = Seen(rawValue: 1 << 8)
    /// `:path` starts with `/`, or is `*`.
    static let slashPath = Seen(rawValue: 1 << 9)
    static let asteriskPath = Seen(rawValue: 1 << 10)
  }

  /// Takes one field of the request's HEADERS, its name recognised by the caller; false once the
  /// request is malformed.
  mutating func take(_ field: RequestFieldName, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool {
    guard !isMalformed else { return false }
    let isValid = field.isPseudoHeader ? takePseudoHeader(field, value) : takeRegularField(field, name, value)
    if !isValid { isMalformed = true }
    return isValid
  }

  /// Whether the request has what every request must once its HEADERS are complete: `:method`,
  /// `:scheme`, `:path` (a path, for http and https) and an authority; a CONNECT only
  /// `:method` and `:authority`.
  var isComplete: Bool {
    guard !isMalformed else { return false }
    if seen.contains(.connectMethod) {
      return seen.contains(.authority) && seen.isDisjoint(with: [.scheme, .path])
    }
    guard seen.isSuperset(of: [.method, .scheme, .path]), !seen.isDisjoint(with: [.authority, .host]) else {
      return false
    }
    return !seen.contains(.httpScheme) || seen.contains(.slashPath)
      || (seen.contains(.optionsMethod) && seen.contains(.asteriskPath))
  }

  /// Whether a trailer field (of a HEADERS frame after the request's) is allowed: no
  /// pseudo-header, a valid name and value, and none of the fields a request may not carry.
  /// A `content-length` there is refused too: the body it would describe has been read.
  static func isValidTrailer(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool {
    let field = RequestFieldName(name)
    switch field {
    case .method, .scheme, .path, .authority, .unknownPseudoHeader, .contentLength, .connectionSpecific: return false
    case .te: return value.matchesIgnoringCase("trailers")
    case .host: return HTTPFieldSyntax.isValidAuthority(value)
    case .other: return HTTPFieldSyntax.isValidName(name) && HTTPFieldSyntax.isValidValue(value)
    default: return HTTPFieldSyntax.isValidValue(value)
    }
  }

  private mutating func takePseudoHeader(_ field: RequestFieldName, _ value: UnsafeRawBufferPointer) -> Bool {
    guard !seen.contains(.regularField) else { return false }
    let pseudoHeader: Seen
    switch field {
    case .path:
      guard HTTPFieldSyntax.isValidPath(value) else { return false }
      pseudoHeader = .path
      if value.first == UInt8(ascii: "/") {
        seen.insert(.slashPath)
      } else if value.matches("*") {
        seen.insert(.asteriskPath)
      }
    case .method:
      guard HTTPFieldSyntax.isValidMethod(value) else { return false }
      pseudoHeader = .method
      if value.matches("CONNECT") {
        seen.insert(.connectMethod)
      } else if value.matches("OPTIONS") {
        seen.insert(.optionsMethod)
      }
    case .scheme:
      guard HTTPFieldSyntax.isValidScheme(value) else { return false }
      pseudoHeader = .scheme
      if value.matchesIgnoringCase("http") || value.matchesIgnoringCase("https") { seen.insert(.httpScheme) }
    case .authority:
      guard HTTPFieldSyntax.isValidAuthority(value) else { return false }
      pseudoHeader = .authority
    default:
      // `:status` is a response's, `:protocol` needs SETTINGS_ENABLE_CONNECT_PROTOCOL (never
      // sent), and no other exists.
      return false
    }
    // Once each, and not only white space (nghttp2's rule: an empty :authority is refused).
    guard !seen.contains(pseudoHeader), value.contains(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") })
    else { return false }
    seen.insert(pseudoHeader)
    return true
  }

  private mutating func takeRegularField(
    _ field: RequestFieldName, _ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer
  ) -> Bool {
    seen.insert(.regularField)
    switch field {
    case .other:
      return HTTPFieldSyntax.isValidName(name) && HTTPFieldSyntax.isValidValue(value)
    case .te:
      return value.matchesIgnoringCase("trailers")
    case .host:
      guard !seen.contains(.host), HTTPFieldSyntax.isValidAuthority(value) else { return false }
      seen.insert(.host)
      return true
    case .contentLength:
      guard contentLength == -1, let length = Self.decimal(value) else { return false }
      contentLength = length
      return true
    case .connectionSpecific:
      return false
    default:
      // A recognised name is its literal's bytes, valid as it stands.
      return HTTPFieldSyntax.isValidValue(value)
    }
  }

  /// A `content-length`: digits only, at most 18 of them (so it cannot overflow).
  private static func decimal(_ value: UnsafeRawBufferPointer) -> Int? {
    guard !value.isEmpty, value.count <= 18 else { return nil }
    var number = 0
    for byte in value {
      guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
      number = number &* 10 &+ Int(byte &- UInt8(ascii: "0"))
    }
    return number
  }
}

extension UnsafeRawBufferPointer {
  /// Equality with a lower-case ASCII literal, ignoring the case of the bytes' letters.
  func matchesIgnoringCase(_ literal: StaticString) -> Bool {
    guard count == literal.utf8CodeUnitCount else { return false }
    let expected = UnsafeRawBufferPointer(start: literal.utf8Start, count: count)
    for index in 0..<count {
      let byte = self[index]
      let lowered = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
      guard lowered == expected[index] else { return false }
    }
    return true
  }
}
