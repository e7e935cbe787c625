import NIOCore
import NIOHTTP1
import Testing

@testable import VLLMClient

@Suite struct HTTP1RequestTests {
  private let plain = HTTP1HeadTemplate(authority: "vllm:8000", basePath: "", authorization: nil)

  @Test func requestHeadersThatCouldSplitTheRequestAreDropped() {
    let request = HTTP1Request.encode(
      method: .POST, path: "/v1/chat/completions", template: plain,
      extraHeaders: [("x-request-id", "abc"), ("x-evil", "a\r\nx-injected: 1"), ("bad name", "v"), ("x-nul", "a\0b")],
      body: Array("{}".utf8))
    #expect(
      String(buffer: request)
        == "POST /v1/chat/completions HTTP/1.1\r\nhost: vllm:8000\r\ncontent-length: 2\r\n"
        + "content-type: application/json\r\naccept: application/json, text/event-stream\r\n"
        + "x-request-id: abc\r\n\r\n{}")
  }

  @Test func aRequestCarriesItsHeadersAndBodyWhateverTheirSizes() {
    let template = HTTP1HeadTemplate(authority: "h", basePath: "/prefix", authorization: "Bearer k")
    let body = [UInt8](repeating: UInt8(ascii: "x"), count: 1234)
    let request = HTTP1Request.encode(
      method: .PUT, path: "/health", template: template, contentType: "multipart/form-data; boundary=b",
      extraHeaders: [("x-long", String(repeating: "v", count: 500)), ("Tok~en!", "a\tb")], body: body)
    #expect(
      String(buffer: request)
        == "PUT /prefix/health HTTP/1.1\r\nhost: h\r\ncontent-length: 1234\r\n"
        + "content-type: multipart/form-data; boundary=b\r\naccept: application/json, text/event-stream\r\n"
        + "authorization: Bearer k\r\nx-long: \(String(repeating: "v", count: 500))\r\nTok~en!: a\tb\r\n\r\n"
        + String(repeating: "x", count: 1234))
    let json = HTTP1Request.encode(method: .POST, path: "/v1/completions", template: template, body: [])
    #expect(
      String(buffer: json)
        == "POST /prefix/v1/completions HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\n"
        + "content-type: application/json\r\naccept: application/json, text/event-stream\r\n"
        + "authorization: Bearer k\r\n\r\n")
    let empty = HTTP1Request.encode(method: .GET, path: "/", template: plain, body: nil)
    #expect(
      String(buffer: empty)
        == "GET / HTTP/1.1\r\nhost: vllm:8000\r\ncontent-length: 0\r\naccept: application/json, text/event-stream\r\n\r\n"
    )
  }

  @Test func lengthsAreWrittenInDecimalWhateverTheirDigits() {
    for value in [0, 7, 10, 99, 1234, 65_536, 9_999_999, 10_000_000, 99_999_999, 100_000_000, 1_234_567_890] {
      var buffer = ByteBuffer(string: "x")
      HTTP1Request.writeDecimal(value, to: &buffer)
      buffer.writeString("y")
      #expect(String(buffer: buffer) == "x\(value)y")
    }
  }

  @Test func keptStartsServeEachPathAndMethodTheirOwn() {
    var starts = HTTP1RequestStarts()
    let template = HTTP1HeadTemplate(authority: "h", basePath: "/b", authorization: nil)
    let paths = (0..<20).map { "/v1/path-\($0)" }
    for _ in 0..<2 {
      for path in paths {
        for method in [HTTPMethod.POST, .GET, .PUT] {
          var spare: ByteBuffer? = nil
          let request = HTTP1Request.encode(
            method: method, path: path, template: template, body: nil, starts: &starts, reusing: &spare)
          #expect(
            String(buffer: request).hasPrefix(
              "\(method.rawValue) /b\(path) HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\n"))
        }
      }
    }
  }

  /// A request goes into a kept buffer's own storage once nothing else holds it.
  @Test func aSpareBufferIsWrittenIntoInPlace() {
    var starts = HTTP1RequestStarts()
    var spares = SpareRequestBuffers()
    let body = Array(#"{"model":"m"}"#.utf8)
    var address: UInt = 0
    do {
      var none: ByteBuffer? = nil
      let sent = HTTP1Request.encode(
        method: .POST, path: "/v1/chat/completions", template: plain, body: body + body, starts: &starts,
        reusing: &none)
      address = sent.withVeryUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
      spares.keep(sent)
    }
    var taken = spares.take()
    #expect(spares.count == 0)
    let next = HTTP1Request.encode(
      method: .POST, path: "/v1/chat/completions", template: plain, body: body, starts: &starts, reusing: &taken)
    #expect(taken == nil)
    #expect(next.withVeryUnsafeBytes { UInt(bitPattern: $0.baseAddress) } == address)
    let fresh = HTTP1Request.encode(method: .POST, path: "/v1/chat/completions", template: plain, body: body)
    #expect(String(buffer: next) == String(buffer: fresh))
  }

  /// A kept buffer whose request is still being written (NIO holds it too) is left as it is:
  /// the next request goes into new storage.
  @Test func aBufferStillBeingSentIsNotWrittenOver() {
    var starts = HTTP1RequestStarts()
    var spares = SpareRequestBuffers()
    var none: ByteBuffer? = nil
    let inFlight = HTTP1Request.encode(
      method: .POST, path: "/v1/completions", template: plain, body: Array("first request".utf8), starts: &starts,
      reusing: &none)
    let before = String(buffer: inFlight)
    spares.keep(inFlight)
    var taken = spares.take()
    let next = HTTP1Request.encode(
      method: .GET, path: "/health", template: plain, body: nil, starts: &starts, reusing: &taken)
    #expect(String(buffer: inFlight) == before)
    #expect(String(buffer: next).hasPrefix("GET /health HTTP/1.1\r\nhost: vllm:8000\r\ncontent-length: 0\r\n"))
  }

  @Test func sparesAreFewAndSmall() {
    var spares = SpareRequestBuffers()
    for _ in 0..<(SpareRequestBuffers.maximumKept + 5) { spares.keep(ByteBufferAllocator().buffer(capacity: 512)) }
    #expect(spares.count == SpareRequestBuffers.maximumKept)
    var large = SpareRequestBuffers()
    large.keep(ByteBufferAllocator().buffer(capacity: SpareRequestBuffers.largestKeptCapacity + 1))
    #expect(large.count == 0)
  }
}
