import Testing

@testable import ProtoJSON

/// The canonical proto3 JSON mapping, both ways: goldens checked against Python's json_format
/// (CanonicalJSONGoldens), the wire bytes JSON becomes, each well-known type, enums, 64-bit
/// integers, and the errors a client sees, word for word.
@Suite struct CanonicalJSONTests {
  typealias Fixture = CanonicalFixture

  // MARK: Goldens

  @Test(arguments: CanonicalJSONGoldens.printed.map(\.name))
  func printsWhatJSONFormatPrints(name: String) throws {
    let golden = CanonicalJSONGoldens.printed.first { $0.name == name }!
    let json = try Fixture.codec(for: golden.type).json(fromMessage: Fixture.bytes(hex: golden.wire), type: golden.type)
    #expect(String(decoding: json, as: UTF8.self) == golden.json)
  }

  @Test(arguments: CanonicalJSONGoldens.printed.map(\.name))
  func readsItsOwnJSONBackToTheSameMessage(name: String) throws {
    let golden = CanonicalJSONGoldens.printed.first { $0.name == name }!
    #expect(try Fixture.print(golden.json, as: golden.type) == golden.json)
  }

  /// JSON to wire bytes: each the same bytes json_format.Parse then SerializeToString gives.
  @Test func writesTheWireBytesProtobufWrites() throws {
    let cases: [(type: String, json: String, wire: String)] = [
      ("Scalars", #"{"fInt32": -1}"#, "18ffffffffffffffffff01"),
      ("Scalars", #"{"fSint32": -1}"#, "3801"),
      ("Scalars", #"{"fSint64": "-2"}"#, "4003"),
      ("Scalars", #"{"fSfixed32": -2}"#, "5dfeffffff"),
      ("Scalars", #"{"fEnum": -1}"#, "8001ffffffffffffffffff01"),
      ("Scalars", #"{"fFloat": 1.5}"#, "150000c03f"),
      ("Scalars", #"{"fBytes": "-_8"}"#, "7a02fbff"),
      ("Repeats", #"{"rInt32": [1, 2, 3]}"#, "1a03010203"),
      ("Repeats", #"{"rInt32": []}"#, ""),
      ("Repeats", #"{"rString": ["a", ""]}"#, "5201615200"),
      ("Optionals", #"{"oInt32": 0}"#, "0800"),
      ("Optionals", #"{"plainInt32": 0}"#, ""),
      ("Choice", #"{"text": ""}"#, "0a00"),
      ("Maps", #"{"boolToInt64": {"true": "5"}}"#, "1a0408011005"),
      ("WellKnown", #"{"value": null}"#, "32020800"),
      ("Choice", #"{"nothing": null}"#, "2800"),
      ("WellKnown", #"{"timestamp": "1970-01-01T00:00:01.5Z"}"#, "420808011080cab5ee01"),
      ("WellKnown", #"{"duration": "-1.5s"}"#, "121608ffffffffffffffffff011080b6ca91feffffffff01"),
      ("WellKnown", #"{"fieldMask": "a.bC,d"}"#, "220a0a05612e625f630a0164"),
      ("WellKnown", #"{"int64Value": "0"}"#, "5a00"),
      (
        "WellKnown", #"{"any": {"fInt32": 1, "@type": "type.googleapis.com/canonicaltest.Scalars"}}"#,
        "0a2f0a29747970652e676f6f676c65617069732e636f6d2f63616e6f6e6963616c746573742e5363616c61727312021801"
      ),
      ("CustomName", #"{"customKey": "x", "field2": 1}"#, "0a01781001"),
      ("WellKnown", #"{"values": [null, "s"]}"#, "9a010208009a01031a0173"),
    ]
    for (type, json, wire) in cases {
      let bytes = try Fixture.codec.message(fromJSON: Array(json.utf8), type: "canonicaltest." + type)
      #expect(Fixture.hex(bytes) == wire, "\(json)")
    }
  }

  // MARK: Fields and presence

  @Test func readsProtoNamesAndJSONNamesAndPrintsJSONNames() throws {
    #expect(
      try Fixture.print(#"{"my_field": "a", "field_2": 1, "foo_bar_baz": "b"}"#, as: "canonicaltest.CustomName")
        == #"{"customKey":"a","field2":1,"fooBarBaz":"b"}"#)
    #expect(
      try Fixture.print(#"{"max_tokens": 5, "maxCompletionTokens": 6}"#, as: "vllmgateway.v1.ChatCompletionRequest")
        == #"{"maxTokens":5,"maxCompletionTokens":6}"#)
  }

  @Test func omitsDefaultsButKeepsOptionalFieldsAndOneofMembers() throws {
    #expect(try Fixture.print(#"{"fInt32": 0, "fString": "", "fBool": false}"#, as: "canonicaltest.Scalars") == "{}")
    #expect(
      try Fixture.print(#"{"oBool": false, "oString": "", "plainInt32": 0}"#, as: "canonicaltest.Optionals")
        == #"{"oString":"","oBool":false}"#)
    #expect(try Fixture.print(#"{"number": 0}"#, as: "canonicaltest.Choice") == #"{"number":0}"#)
    #expect(try Fixture.print(#"{"scalars": {}}"#, as: "canonicaltest.Choice") == #"{"scalars":{}}"#)
  }

  @Test func nullMeansTheDefault() throws {
    #expect(try Fixture.print(#"{"fInt32": null, "fEnum": null}"#, as: "canonicaltest.Scalars") == "{}")
    #expect(try Fixture.print(#"{"rInt32": null, "rMessage": null}"#, as: "canonicaltest.Repeats") == "{}")
    #expect(try Fixture.print(#"{"oInt32": null}"#, as: "canonicaltest.Optionals") == "{}")
    // A null member does not count as the oneof's choice.
    #expect(try Fixture.print(#"{"text": null, "number": 3}"#, as: "canonicaltest.Choice") == #"{"number":3}"#)
  }

  @Test func lastOneofMemberOnTheWireWins() throws {
    // text = "a" (field 1), then number = 2 (field 2), then text = "b".
    let wire: [UInt8] = [0x0A, 0x01, 0x61, 0x10, 0x02, 0x0A, 0x01, 0x62]
    #expect(try printed(wire, "canonicaltest.Choice") == #"{"text":"b"}"#)
    #expect(try printed([0x0A, 0x01, 0x61, 0x10, 0x02], "canonicaltest.Choice") == #"{"number":2}"#)
  }

  @Test func repeatedMessageFieldsOnTheWireMerge() throws {
    // scalars {f_int32: 1} then scalars {f_string: "x"}: one message holding both.
    let wire: [UInt8] = [0x1A, 0x02, 0x18, 0x01, 0x1A, 0x03, 0x72, 0x01, 0x78]
    #expect(try printed(wire, "canonicaltest.Choice") == #"{"scalars":{"fInt32":1,"fString":"x"}}"#)
  }

  @Test func unpackedRepeatedScalarsAndUnknownFieldsAreRead() throws {
    // r_int32 as separate varints (field 3), an unknown field 99, then a packed run.
    let wire: [UInt8] = [0x18, 0x05, 0x98, 0x06, 0x01, 0x18, 0x06, 0x1A, 0x01, 0x07]
    #expect(try printed(wire, "canonicaltest.Repeats") == #"{"rInt32":[5,6,7]}"#)
  }

  @Test func mapKeysKeepTheirLastValue() throws {
    // string_to_string {"k": "a"}, then {"k": "b"}.
    let entry: (UInt8) -> [UInt8] = { [0x0A, 0x06, 0x0A, 0x01, 0x6B, 0x12, 0x01, $0] }
    #expect(try printed(entry(0x61) + entry(0x62), "canonicaltest.Maps") == #"{"stringToString":{"k":"b"}}"#)
    // An entry without a value holds the value type's default.
    #expect(try printed([0x12, 0x02, 0x08, 0x07], "canonicaltest.Maps") == #"{"int32ToMessage":{"7":{}}}"#)
  }

  // MARK: Scalars

  @Test func sixtyFourBitIntegersAreStringsAndReadFromEither() throws {
    let json = #"{"fInt64": -9223372036854775808, "fUint64": "18446744073709551615", "fSint64": 1e3}"#
    #expect(
      try Fixture.print(json, as: "canonicaltest.Scalars")
        == #"{"fInt64":"-9223372036854775808","fUint64":"18446744073709551615","fSint64":"1000"}"#)
    #expect(
      try Fixture.print(#"{"fInt32": "12", "fUint32": 2.0}"#, as: "canonicaltest.Scalars")
        == #"{"fInt32":12,"fUint32":2}"#)
  }

  @Test func floatsAndDoublesWithTheirSpecialValues() throws {
    #expect(
      try Fixture.print(#"{"fDouble": "NaN", "fFloat": "-Infinity"}"#, as: "canonicaltest.Scalars")
        == #"{"fDouble":"NaN","fFloat":"-Infinity"}"#)
    #expect(
      try Fixture.print(#"{"fDouble": "1.25", "fFloat": 0.1}"#, as: "canonicaltest.Scalars")
        == #"{"fDouble":1.25,"fFloat":0.1}"#)
    #expect(try Fixture.print(#"{"fDouble": -0.0}"#, as: "canonicaltest.Scalars") == #"{"fDouble":-0.0}"#)
    #expect(
      try Fixture.print(#"{"fFloat": 3.4028235e38}"#, as: "canonicaltest.Scalars") == #"{"fFloat":3.4028235e+38}"#)
  }

  @Test func bytesAreStandardBase64AndReadInAnyOfItsSpellings() throws {
    for spelling in ["+/8=", "+/8", "-_8=", "-_8"] {
      #expect(
        try Fixture.print(#"{"fBytes": "\#(spelling)"}"#, as: "canonicaltest.Scalars") == #"{"fBytes":"+/8="}"#)
    }
  }

  @Test func enumsByNameOrNumber() throws {
    #expect(try Fixture.print(#"{"fEnum": "COLOR_RED"}"#, as: "canonicaltest.Scalars") == #"{"fEnum":"COLOR_RED"}"#)
    #expect(try Fixture.print(#"{"fEnum": 2}"#, as: "canonicaltest.Scalars") == #"{"fEnum":"COLOR_GREEN"}"#)
    // proto3 enums are open: an unknown number is kept, and printed as a number.
    #expect(try Fixture.print(#"{"fEnum": 99}"#, as: "canonicaltest.Scalars") == #"{"fEnum":99}"#)
    #expect(
      try Fixture.print(#"{"rEnum": ["COLOR_GREEN", 0, "1"]}"#, as: "canonicaltest.Repeats")
        == #"{"rEnum":["COLOR_GREEN","COLOR_UNSPECIFIED","COLOR_RED"]}"#)
    #expect(
      try Fixture.print(#"{"inner": {"kind": "KIND_A"}}"#, as: "canonicaltest.Nested")
        == #"{"inner":{"kind":"KIND_A"}}"#)
  }

  // MARK: Well-known types

  @Test func timestamps() throws {
    let cases = [
      ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"),
      ("2024-02-29T12:00:00.5+01:30", "2024-02-29T10:30:00.500Z"),
      ("1969-12-31T23:59:59.000001Z", "1969-12-31T23:59:59.000001Z"),
      ("2000-01-01T00:00:00.123456789Z", "2000-01-01T00:00:00.123456789Z"),
      ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
      ("9999-12-31T23:59:59.999999999Z", "9999-12-31T23:59:59.999999999Z"),
    ]
    for (input, output) in cases {
      #expect(
        try Fixture.print(#"{"timestamp": "\#(input)"}"#, as: "canonicaltest.WellKnown")
          == #"{"timestamp":"\#(output)"}"#)
    }
  }

  @Test func durations() throws {
    for (input, output) in [
      ("1.5s", "1.500s"), ("-0.000000001s", "-0.000000001s"), ("0s", "0s"), ("3.000010s", "3.000010s"),
      ("-315576000000.999999999s", "-315576000000.999999999s"),
    ] {
      #expect(
        try Fixture.print(#"{"duration": "\#(input)"}"#, as: "canonicaltest.WellKnown") == #"{"duration":"\#(output)"}"#
      )
    }
  }

  @Test func wrappersAreTheirBareValue() throws {
    let json =
      #"{"doubleValue":0,"floatValue":"NaN","int64Value":"-3","uint64Value":"18446744073709551615","int32Value":1,"#
      + #""uint32Value":7,"boolValue":false,"stringValue":"","bytesValue":"AA=="}"#
    #expect(try Fixture.print(json, as: "canonicaltest.WellKnown") == json)
  }

  @Test func structValueAndListValueAreTheJSONTheyHold() throws {
    let json = #"{"struct":{"a":[1,"x",null,true,{}],"b":{"c":-1.5}},"value":[[]],"listValue":[null,{"d":false}]}"#
    #expect(try Fixture.print(json, as: "canonicaltest.WellKnown") == json)
    #expect(try Fixture.print(#"{"value": null}"#, as: "canonicaltest.WellKnown") == #"{"value":null}"#)
    #expect(try Fixture.print(#"{"struct": {}}"#, as: "canonicaltest.WellKnown") == #"{"struct":{}}"#)
  }

  @Test func fieldMasksEmptyAndAny() throws {
    #expect(
      try Fixture.print(#"{"fieldMask": "a.bC,dEf", "empty": {}}"#, as: "canonicaltest.WellKnown")
        == #"{"empty":{},"fieldMask":"a.bC,dEf"}"#)
    // "@type" anywhere in the object; a well-known type's JSON under "value".
    #expect(
      try Fixture.print(#"{"any": {"fInt32": 5, "@type": "t/canonicaltest.Scalars"}}"#, as: "canonicaltest.WellKnown")
        == #"{"any":{"@type":"t/canonicaltest.Scalars","fInt32":5}}"#)
    #expect(
      try Fixture.print(
        #"{"any": {"@type": "type.googleapis.com/google.protobuf.Duration", "value": "2s"}}"#,
        as: "canonicaltest.WellKnown")
        == #"{"any":{"@type":"type.googleapis.com/google.protobuf.Duration","value":"2s"}}"#)
    #expect(try Fixture.print(#"{"any": {}}"#, as: "canonicaltest.WellKnown") == #"{"any":{}}"#)
  }

  @Test func topLevelWellKnownTypes() throws {
    #expect(
      try Fixture.print(#""2020-05-06T07:08:09Z""#, as: "google.protobuf.Timestamp") == #""2020-05-06T07:08:09Z""#)
    #expect(try Fixture.print(#"[1, "a"]"#, as: "google.protobuf.ListValue") == #"[1,"a"]"#)
    #expect(try Fixture.print("true", as: "google.protobuf.BoolValue") == "true")
    #expect(try Fixture.print("{}", as: "google.protobuf.Empty") == "{}")
  }

  // MARK: Errors

  /// Each error names the field's path and the problem, exactly as a client sees it.
  @Test func parseErrorsNameThePath() {
    let cases: [(type: String, json: String, error: String)] = [
      ("vllmgateway.v1.ChatCompletionRequest", #"{"messages": [{"role": 5}]}"#, "messages[0].role: expected a string"),
      (
        "vllmgateway.v1.ChatCompletionRequest",
        #"{"messages": [{"role": "user", "text": "a", "parts": {"values": []}}]}"#,
        "messages[0].parts: oneof content is already set by text"
      ),
      (
        "vllmgateway.v1.ChatCompletionRequest", #"{"messages": [{"role": "user", "colour": 1}]}"#,
        #"messages[0]: vllmgateway.v1.ChatMessage has no field "colour""#
      ),
      ("vllmgateway.v1.ChatCompletionRequest", #"{"maxTokens": 1.5}"#, "maxTokens: 1.5 is not an integer"),
      ("vllmgateway.v1.ChatCompletionRequest", #"{"n": 2147483648}"#, "n: 2147483648 is out of range for int32"),
      ("vllmgateway.v1.ChatCompletionRequest", #"{"seed": "x"}"#, #"seed: "x" is not an integer"#),
      ("vllmgateway.v1.ChatCompletionRequest", #"{"logitBias": {"5": "a"}}"#, #"logitBias["5"]: "a" is not a number"#),
      (
        "vllmgateway.v1.ChatCompletionRequest", #"{"maxTokens": 1, "max_tokens": 2}"#,
        "max_tokens: field max_tokens is given more than once"
      ),
      ("vllmgateway.v1.ChatCompletionRequest", #"{"messages": {}}"#, "messages: expected an array"),
      ("vllmgateway.v1.ChatCompletionRequest", #"{"messages": [null]}"#, "messages[0]: null is not allowed in a list"),
      ("vllmgateway.v1.ChatCompletionRequest", "[]", "expected an object"),
      (
        "vllmgateway.v1.ChatCompletionRequest", #"{"model": "m"} {}"#, "unexpected text after the JSON value at byte 15"
      ),
      ("vllmgateway.v1.ChatCompletionRequest", #"{"model": "m""#, "invalid JSON at byte 13: unterminated object"),
      (
        "vllmgateway.v1.ChatCompletionRequest", #"{"extraBody": {"a": [1, }]}}"#,
        #"extraBody["a"][1]: invalid JSON at byte 24: unexpected character '}'"#
      ),
      (
        "canonicaltest.Scalars", #"{"fUint64": "18446744073709551616"}"#,
        "fUint64: 18446744073709551616 is out of range for uint64"
      ),
      ("canonicaltest.Scalars", #"{"fUint32": -1}"#, "fUint32: -1 is out of range for uint32"),
      ("canonicaltest.Scalars", #"{"fInt32": " 1"}"#, #"fInt32: " 1" is not an integer"#),
      ("canonicaltest.Scalars", #"{"fInt32": true}"#, "fInt32: expected an integer"),
      ("canonicaltest.Scalars", #"{"fDouble": 1e999}"#, "fDouble: 1e999 is out of range for double"),
      ("canonicaltest.Scalars", #"{"fFloat": 3.5e38}"#, "fFloat: 3.5e38 is out of range for float"),
      ("canonicaltest.Scalars", #"{"fDouble": "nan"}"#, #"fDouble: "nan" is not a number"#),
      ("canonicaltest.Scalars", #"{"fBool": "true"}"#, "fBool: expected true or false"),
      ("canonicaltest.Scalars", #"{"fBytes": "A"}"#, "fBytes: invalid base64"),
      ("canonicaltest.Scalars", #"{"fBytes": "AA=A"}"#, "fBytes: invalid base64"),
      ("canonicaltest.Scalars", #"{"fBytes": 1}"#, "fBytes: expected a base64 string"),
      (
        "canonicaltest.Scalars", #"{"fEnum": "COLOR_BLUE"}"#,
        #"fEnum: unknown value "COLOR_BLUE" for enum canonicaltest.Color"#
      ),
      ("canonicaltest.Scalars", #"{"fEnum": 1.5}"#, "fEnum: 1.5 is not an integer"),
      ("canonicaltest.Scalars", #"{"fEnum": {}}"#, "fEnum: expected an enum name or number"),
      ("canonicaltest.Scalars", #"{"fInt32": 1, "fInt32": 2}"#, "fInt32: field f_int32 is given more than once"),
      ("canonicaltest.Maps", #"{"int32ToMessage": {"x": {}}}"#, #"int32ToMessage["x"]: map key must be an integer"#),
      (
        "canonicaltest.Maps", #"{"boolToInt64": {"yes": 1}}"#, #"boolToInt64["yes"]: map key must be "true" or "false""#
      ),
      (
        "canonicaltest.Maps", #"{"stringToString": {"a": null}}"#,
        #"stringToString["a"]: null is not allowed as a map value"#
      ),
      (
        "canonicaltest.Maps", #"{"stringToString": {"a": "b", "a": "c"}}"#,
        #"stringToString["a"]: key is given more than once"#
      ),
      ("canonicaltest.Repeats", #"{"rMessage": [{}, {"fInt32": "x"}]}"#, #"rMessage[1].fInt32: "x" is not an integer"#),
      ("canonicaltest.Choice", #"{"text": "a", "number": 1}"#, "number: oneof pick is already set by text"),
      (
        "canonicaltest.WellKnown", #"{"timestamp": "2023-02-29T00:00:00Z"}"#,
        #"timestamp: invalid google.protobuf.Timestamp "2023-02-29T00:00:00Z""#
      ),
      ("canonicaltest.WellKnown", #"{"timestamp": 0}"#, "timestamp: expected an RFC 3339 timestamp string"),
      (
        "canonicaltest.WellKnown", #"{"duration": "1.0000000001s"}"#,
        #"duration: invalid google.protobuf.Duration "1.0000000001s""#
      ),
      (
        "canonicaltest.WellKnown", #"{"duration": "315576000001s"}"#,
        #"duration: invalid google.protobuf.Duration "315576000001s""#
      ),
      (
        "canonicaltest.WellKnown", #"{"fieldMask": "a_b"}"#, #"fieldMask: invalid google.protobuf.FieldMask path "a_b""#
      ),
      ("canonicaltest.WellKnown", #"{"struct": []}"#, "struct: expected an object"),
      ("canonicaltest.WellKnown", #"{"value": 1e999}"#, "value: 1e999 is out of range for double"),
      ("canonicaltest.WellKnown", #"{"int32Value": {"value": 5}}"#, "int32Value: expected an integer"),
      ("canonicaltest.WellKnown", #"{"any": {"fInt32": 5}}"#, #"any: google.protobuf.Any is missing "@type""#),
      (
        "canonicaltest.WellKnown", #"{"any": {"@type": "x/canonicaltest.Nope"}}"#,
        "any: google.protobuf.Any holds x/canonicaltest.Nope, which is not in the schema"
      ),
      (
        "canonicaltest.WellKnown", #"{"any": {"@type": "x/canonicaltest.Scalars", "nope": 1}}"#,
        #"any: canonicaltest.Scalars has no field "nope""#
      ),
      (
        "canonicaltest.WellKnown", #"{"any": {"@type": "x/google.protobuf.Duration", "value": "1s", "extra": 1}}"#,
        #"any: google.protobuf.Any holding google.protobuf.Duration has no field "extra""#
      ),
      ("canonicaltest.WellKnown", #"{"empty": {"a": 1}}"#, #"empty: google.protobuf.Empty has no field "a""#),
      ("canonicaltest.Nope", "{}", "unknown message type canonicaltest.Nope"),
    ]
    for (type, json, error) in cases {
      #expect(Fixture.parseError(json, as: type) == error, "\(json)")
    }
  }

  @Test func invalidUTF8IsRefusedWhereItIs() {
    var json = Array(#"{"fString": "ab"}"#.utf8)
    json.insert(0xFF, at: 14)
    #expect(throws: ProtoJSONError("invalid UTF-8 at byte 14")) {
      try Fixture.codec.message(fromJSON: json, type: "canonicaltest.Scalars")
    }
    // An overlong encoding of "/" and a UTF-16 surrogate encoded as UTF-8 are invalid too.
    for bad: [UInt8] in [[0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82]] {
      let text = Array(#"{"fString": ""#.utf8) + bad + Array(#""}"#.utf8)
      #expect(throws: ProtoJSONError("invalid UTF-8 at byte 13")) {
        try Fixture.codec.message(fromJSON: text, type: "canonicaltest.Scalars")
      }
    }
  }

  /// What cannot be printed: each an error, not a crash or invalid JSON.
  @Test func printErrors() {
    let cases: [(type: String, wire: [UInt8], error: String)] = [
      // f_string = "\xff"
      ("canonicaltest.Scalars", [0x72, 0x01, 0xFF], "fString: string is not valid UTF-8"),
      // timestamp { seconds: 253402300800 }: a second past 9999-12-31T23:59:59Z.
      (
        "canonicaltest.WellKnown", [0x42, 0x07, 0x08, 0x80, 0x83, 0xD1, 0xFF, 0xAF, 0x07],
        "timestamp: google.protobuf.Timestamp out of range (seconds 253402300800, nanos 0)"
      ),
      // duration { seconds: 1, nanos: -1 }: signs differ.
      (
        "canonicaltest.WellKnown",
        [0x12, 0x0D, 0x08, 0x01, 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
        "duration: google.protobuf.Duration out of range (seconds 1, nanos -1)"
      ),
      // value { number_value: NaN }
      (
        "canonicaltest.WellKnown", [0x32, 0x09, 0x11, 0, 0, 0, 0, 0, 0, 0xF8, 0x7F],
        "value: google.protobuf.Value cannot hold NaN or Infinity in JSON"
      ),
      // field_mask { paths: "aB" }
      (
        "canonicaltest.WellKnown", [0x22, 0x04, 0x0A, 0x02, 0x61, 0x42],
        #"fieldMask: google.protobuf.FieldMask path "aB" has no JSON form"#
      ),
      // any { type_url: "x/y.Z" }
      (
        "canonicaltest.WellKnown", [0x0A, 0x07, 0x0A, 0x05, 0x78, 0x2F, 0x79, 0x2E, 0x5A],
        "any: google.protobuf.Any holds x/y.Z, which is not in the schema"
      ),
      // r_message: a length running past the end.
      (
        "canonicaltest.Repeats", [0x6A, 0x05, 0x18],
        "malformed canonicaltest.Repeats: length-delimited field overruns the message"
      ),
      (
        "canonicaltest.Repeats", [0x6A, 0x02, 0x18, 0x80],
        "rMessage[0]: malformed canonicaltest.Scalars: truncated varint"
      ),
      ("canonicaltest.Repeats", [0x1A, 0x01, 0x80], "rInt32: malformed packed field: truncated varint"),
      ("canonicaltest.Nope", [], "unknown message type canonicaltest.Nope"),
    ]
    for (type, wire, error) in cases {
      #expect(throws: ProtoJSONError(error)) { try Fixture.codec.json(fromMessage: wire, type: type) }
    }
  }

  // MARK: Depth

  @Test func nestingIsBoundedBothWays() throws {
    func nestedJSON(_ levels: Int) -> [UInt8] {
      Array((String(repeating: #"{"child":"#, count: levels) + "{}" + String(repeating: "}", count: levels)).utf8)
    }
    let codec = Fixture.codec
    // 100 objects in all: the limit.
    let deepest = try codec.message(fromJSON: nestedJSON(99), type: "canonicaltest.Nested")
    #expect(try codec.json(fromMessage: deepest, type: "canonicaltest.Nested") == nestedJSON(99))
    for levels in [100, 10_000] {
      #expect {
        try codec.message(fromJSON: nestedJSON(levels), type: "canonicaltest.Nested")
      } throws: { error in
        (error as? ProtoJSONError)?.message.hasSuffix("nested deeper than 100") == true
      }
    }
    // Values nest through Struct and ListValue: the bound holds there too, and far past it the
    // JSON reader's own bound stops the text before any recursion.
    let lists = Array(
      (#"{"value":"# + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}").utf8)
    #expect(throws: ProtoJSONError.self) { try codec.message(fromJSON: lists, type: "canonicaltest.WellKnown") }
    // Printing: a message nested 150 deep on the wire, built from the inside out.
    var wire: [UInt8] = []
    for _ in 0..<150 {
      var writer = ProtoWireWriter()
      writer.lengthDelimited(1, wire)
      wire = writer.bytes
    }
    #expect {
      try codec.json(fromMessage: wire, type: "canonicaltest.Nested")
    } throws: { error in
      (error as? ProtoJSONError)?.message.hasSuffix("nested deeper than 100") == true
    }
  }

  private func printed(_ wire: [UInt8], _ type: String) throws -> String {
    String(decoding: try Fixture.codec.json(fromMessage: wire, type: type), as: UTF8.self)
  }
}
