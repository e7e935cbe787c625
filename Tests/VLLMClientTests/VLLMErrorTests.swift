import Testing

@testable import VLLMClient

@Suite struct VLLMErrorTests {
  @Test func readsVLLMsStandardErrorBody() {
    let body = Array(
      #"{"error":{"message":"The model `gpt-4o` does not exist.","type":"NotFoundError","param":"model","code":404}}"#
        .utf8)
    let error = VLLMError.fromResponse(status: 404, body: body)
    #expect(
      error
        == VLLMError(
          kind: .upstream, httpStatus: 404, message: "The model `gpt-4o` does not exist.", type: "NotFoundError",
          param: "model"))
  }

  @Test func readsTheUnauthorizedString() {
    let error = VLLMError.fromResponse(status: 401, body: Array(#"{"error":"Unauthorized"}"#.utf8))
    #expect(error.message == "Unauthorized" && error.httpStatus == 401 && error.type == nil)
  }

  @Test func readsDetailBodies() {
    #expect(VLLMError.fromResponse(status: 404, body: Array(#"{"detail":"Not Found"}"#.utf8)).message == "Not Found")
    let listDetail = VLLMError.fromResponse(status: 422, body: Array(#"{"detail":[{"loc":["body"],"msg":"x"}]}"#.utf8))
    #expect(listDetail.message.contains("\"msg\":\"x\""))
  }

  @Test func keepsOtherBodiesAsText() {
    let error = VLLMError.fromResponse(status: 502, body: Array("<html>Bad Gateway</html>".utf8))
    #expect(error.message == "<html>Bad Gateway</html>" && error.httpStatus == 502)
    #expect(VLLMError.fromResponse(status: 500, body: []).message == "vLLM answered HTTP 500")
  }

  @Test func streamErrorEventsUseTheirCode() {
    let event = Array(
      #"{"error": {"message": "bad regex", "type": "BadRequestError", "param": null, "code": 400}}"#.utf8)
    let error = VLLMError.fromErrorObject(event)
    #expect(error?.httpStatus == 400 && error?.type == "BadRequestError" && error?.param == nil)
  }

  @Test func normalChunksAreNotErrors() {
    #expect(VLLMError.fromErrorObject(Array(#"{"id":"chatcmpl-1","choices":[]}"#.utf8)) == nil)
    #expect(VLLMError.fromErrorObject(Array("not json".utf8)) == nil)
  }
}
