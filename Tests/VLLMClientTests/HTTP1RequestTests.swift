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
}
