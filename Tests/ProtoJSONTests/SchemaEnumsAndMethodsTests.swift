import Testing

@testable import ProtoJSON

/// What the schema now reads for the canonical JSON codec: enums, json_names, presence, and the
/// types of each service method.
@Suite struct SchemaEnumsAndMethodsTests {
  let schema = CanonicalFixture.schema

  @Test func enumsWithTheirValuesTopLevelAndNested() throws {
    let color = try #require(schema.enumType("canonicaltest.Color"))
    #expect(color.values.map(\.name) == ["COLOR_UNSPECIFIED", "COLOR_RED", "COLOR_GREEN"])
    #expect(color.name(of: 2) == "COLOR_GREEN")
    #expect(color.name(of: 3) == nil)
    #expect(color.number(named: "COLOR_RED") == 1)
    #expect(schema.enumType("canonicaltest.Nested.Inner.Kind")?.number(named: "KIND_A") == 1)
    #expect(schema.enumType("google.protobuf.NullValue")?.name(of: 0) == "NULL_VALUE")
    #expect(Schema.bundled.enumType("grpc.health.v1.HealthCheckResponse.ServingStatus")?.number(named: "SERVING") == 1)
  }

  @Test func jsonNamesAndPresence() throws {
    let custom = try #require(schema.message("canonicaltest.CustomName"))
    #expect(custom.fields.map(\.jsonName) == ["customKey", "field2", "fooBarBaz"])
    let optionals = try #require(schema.message("canonicaltest.Optionals"))
    #expect(optionals.fields.map(\.hasPresence) == [true, true, true, true, true, true, true, false])
    // The synthetic oneofs of `optional` fields stay out of the oneofs.
    #expect(optionals.oneofs.isEmpty)
    let choice = try #require(schema.message("canonicaltest.Choice"))
    #expect(choice.fields.map(\.hasPresence) == [true, true, true, true, true, false])
    let repeats = try #require(schema.message("canonicaltest.Repeats"))
    #expect(repeats.fields.allSatisfy { !$0.hasPresence })
    #expect(MessageSchema.Field.jsonName(of: "max_completion_tokens") == "maxCompletionTokens")
  }

  @Test func methodTypesByPath() {
    let echo = schema.methodTypes(path: "/canonicaltest.TestService/Echo")
    #expect(echo?.input == "canonicaltest.Scalars" && echo?.output == "canonicaltest.Repeats")
    #expect(schema.methodTypes(path: "/canonicaltest.TestService/Watch")?.output == "canonicaltest.WellKnown")
    #expect(schema.methodTypes(path: "/canonicaltest.TestService/Nope") == nil)
    let chat = Schema.bundled.methodTypes(path: "/vllmgateway.v1.VLLMService/StreamChatCompletion")
    #expect(
      chat?.input == "vllmgateway.v1.ChatCompletionRequest" && chat?.output == "vllmgateway.v1.ChatCompletionChunk")
    #expect(
      Schema.bundled.methodTypes(path: "/grpc.health.v1.Health/Check")?.input == "grpc.health.v1.HealthCheckRequest")
  }
}
