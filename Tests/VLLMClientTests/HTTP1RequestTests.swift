import NIOCore
import Testing

@testable import VLLMClient

@Suite struct HTTP1RequestTests {
  @Test func requestHeadersThatCouldSplitTheRequestAreDropped() {
    let request = HTTP1Request.encode(
      method: .POST, target: "/v1/chat/completions", authority: "vllm:8000",
      extraHeaders: [("x-request-id", "abc"), ("x-evil", "a\r\nx-injected: 1"), ("bad name", "v"), ("x-nul", "a\0b")],
      body: Array("{}".utf8))
    let text = String(buffer: request)
    #expect(
      text
        == "POST /v1/chat/completions HTTP/1.1\r\nhost: vllm:8000\r\ncontent-length: 2\r\nx-request-id: abc\r\n\r\n{}")
  }

  @Test func aRequestCarriesItsHeadersAndBodyWhateverTheirSizes() {
    let body = [UInt8](repeating: UInt8(ascii: "x"), count: 1234)
    let request = HTTP1Request.encode(
      method: .GET, target: "/health", authority: "h",
      headers: ["content-type": "application/json", "authorization": nil, "accept": "*/*"],
      extraHeaders: [("x-long", String(repeating: "v", count: 500)), ("Tok~en!", "a\tb")], body: body)
    let text = String(buffer: request)
    #expect(
      text
        == "GET /health HTTP/1.1\r\nhost: h\r\ncontent-length: 1234\r\ncontent-type: application/json\r\n"
        + "accept: */*\r\nx-long: \(String(repeating: "v", count: 500))\r\nTok~en!: a\tb\r\n\r\n"
        + String(repeating: "x", count: 1234))
    let empty = HTTP1Request.encode(method: .GET, target: "/", authority: "h", body: nil)
    #expect(String(buffer: empty) == "GET / HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\n\r\n")
  }
}
