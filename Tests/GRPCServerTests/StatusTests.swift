import Testing

@testable import GRPCServer

@Suite struct StatusTests {
  @Test func codesHaveTheirWireValuesAndNames() {
    #expect(Status.Code.allCases.count == 17)
    #expect(Status.Code.deadlineExceeded.rawValue == 4)
    #expect(Status.Code.unauthenticated.rawValue == 16)
    #expect(Status.Code.resourceExhausted.name == "RESOURCE_EXHAUSTED")
    #expect(Status(.notFound, "no model").description == "NOT_FOUND: no model")
  }

  @Test func metadataLowercasesKeysAndKeepsOrder() {
    var metadata = Metadata()
    metadata.add("X-One", "1")
    metadata.add("x-two-bin", binary: [1, 2])
    metadata.add("x-one", "again")
    #expect(metadata.map(\.key) == ["x-one", "x-two-bin", "x-one"])
    #expect(metadata.first("x-one") == "1")
    #expect(metadata.firstBinary("x-two-bin") == [1, 2])
    #expect(metadata.first("x-two-bin") == nil)
  }
}
