/// Messages printed by the canonical JSON codec, checked against Python's
/// google.protobuf.json_format (protobuf 7.36): the wire bytes are json_format's
/// SerializeToString of each message, and the JSON is what the codec prints for them, which
/// parses to the same JSON value as MessageToJson's (and back, through json_format.Parse, to the
/// same message). Three differences are json_format's, not the codec's: it prints the float
/// 1.4e-45 as 1.4013e-45 (the same float); it refuses to parse 3.4028235e+38, the largest float,
/// which it prints itself; and an unset Value prints as null and so reads back as null_value
/// (json_format does the same).
enum CanonicalJSONGoldens {
  static let printed: [(name: String, type: String, wire: String, json: String)] = [
    (
      "chat_request", "vllmgateway.v1.ChatCompletionRequest",
      #"""
      0a016d12130a0673797374656d120942652062726965662e12660a04757365721a590a330a310a2f5768617420697320696e\#
      207468697320696d6167653f20c3bc6ec3af63c3b864c3a920f09f988020227122205c200a0a2212200a1e0a1a646174613a\#
      696d6167652f706e673b6261736536342c4141414112002203616e6e120d0a09617373697374616e741200220c0a01311100\#
      0000000000e03f22100a0535303235361100000000000059c0380048026087808080808080801072090a020a0a0a03454e44\#
      810100000000000000009201009a01046175746fba3e680a120a05746f705f6b12091100000000000014400a0b0a05656d70\#
      747912022a000a450a066e6573746564123b2a390a370a0161123232300a0911000000000000f03f0a091100000000000004\#
      400a031a01780a0208000a0220010a0b2a090a070a016212023200
      """#,
      #"""
      {"model":"m","messages":[{"role":"system","text":"Be brief."},{"role":"user","parts":{"values":[{"te\#
      xt":{"text":"What is in this image? ünïcødé 😀 \"q\" \\ \n"}},{"imageUrl":{"imageUrl":{"url":"data:im\#
      age/png;base64,AAAA","detail":""}}}]},"name":"ann"},{"role":"assistant","text":""}],"logitBias":{"1"\#
      :0.5,"50256":-100},"maxTokens":0,"n":2,"seed":"1152921504606846983","stopStrings":{"values":["\n\n",\#
      "END"]},"temperature":0,"tools":[{}],"toolChoiceMode":"auto","extraBody":{"top_k":5,"empty":{},"nest\#
      ed":{"a":[1,2.5,"x",null,true,{"b":[]}]}}}
      """#
    ),
    (
      "chat_chunk", "vllmgateway.v1.ChatCompletionChunk",
      #"""
      0a0a63686174636d706c2d311215636861742e636f6d706c6574696f6e2e6368756e6b1880e2cfaa0622016d2a5e12310a09\#
      617373697374616e74120022220801120663616c6c5f311a0866756e6374696f6e220c0a016612077b2278223a317d1a130a\#
      110a02686911000000000000d0bf1a02686930003a12010203ffffffff07fbffffffffffffffff013204080a180a
      """#,
      #"""
      {"id":"chatcmpl-1","object":"chat.completion.chunk","created":"1700000000","model":"m","choices":[{"\#
      delta":{"role":"assistant","content":"","toolCalls":[{"index":1,"id":"call_1","type":"function","fun\#
      ction":{"name":"f","arguments":"{\"x\":1}"}}]},"logprobs":{"content":[{"token":"hi","logprob":-0.25,\#
      "bytes":[104,105]}]},"stopReasonTokenId":"0","tokenIds":[1,2,3,2147483647,-5]}],"usage":{"promptToke\#
      ns":10,"totalTokens":10}}
      """#
    ),
    (
      "chat_chunk_final", "vllmgateway.v1.ChatCompletionChunk",
      #"""
      0a017818ffffffffffffffffff012a0e0803220473746f702a043c2f733e
      """#,
      #"""
      {"id":"x","created":"-1","choices":[{"index":3,"finishReason":"stop","stopReasonText":"</s>"}]}
      """#
    ),
    (
      "embedding_request", "vllmgateway.v1.EmbeddingRequest",
      #"""
      0a01651a060a01610a016238005800
      """#,
      #"""
      {"model":"e","inputTexts":{"values":["a","b"]},"dimensions":0,"normalize":false}
      """#
    ),
    (
      "embedding_response", "vllmgateway.v1.EmbeddingResponse",
      #"""
      0a03656d6212046c69737418052201652a391209656d62656464696e671a2ccdcccc3d000020c095bfd633ffff7f7f000000\#
      00000000800000c07f0000807f000080ff0000804bec78ad6032020802
      """#,
      #"""
      {"id":"emb","object":"list","created":"5","model":"e","data":[{"object":"embedding","embedding":[0.1\#
      ,-2.5,1e-07,3.4028235e+38,0,-0.0,"NaN","Infinity","-Infinity",16777216,1e+20]}],"usage":{"promptToke\#
      ns":2}}
      """#
    ),
    (
      "scalars", "canonicaltest.Scalars",
      #"""
      09000000000000f83f15cdcccc3d18d6ffffffffffffffff01208080808080808080800128ffffffff0f30ffffffffffffff\#
      ffff0138ffffffff0f40feffffffffffffffff014d0700000051feffffffffffffff5df9ffffff6100000000000000c06801\#
      7207c3a9001fe280a87a8002000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425\#
      262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657\#
      58595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f80818283848586878889\#
      8a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babb\#
      bcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebeced\#
      eeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff800102
      """#,
      #"""
      {"fDouble":1.5,"fFloat":0.1,"fInt32":-42,"fInt64":"-9223372036854775808","fUint32":4294967295,"fUint\#
      64":"18446744073709551615","fSint32":-2147483648,"fSint64":"9223372036854775807","fFixed32":7,"fFixe\#
      d64":"18446744073709551614","fSfixed32":-7,"fSfixed64":"-4611686018427387904","fBool":true,"fString"\#
      :"é\u0000\u001f ","fBytes":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1\#
      Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn+A\#
      gYKDhIWGh4iJiouMjY6PkJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmqq6ytrq+wsbKztLW2t7i5uru8vb6/wMHCw8TFxsfIycrL\#
      zM3Oz9DR0tPU1dbX2Nna29zd3t/g4eLj5OXm5+jp6uvs7e7v8PHy8/T19vf4+fr7/P3+/w==","fEnum":"COLOR_GREEN"}
      """#
    ),
    (
      "scalars_special", "canonicaltest.Scalars",
      #"""
      09000000000000f87f15000080ff7a01ff800107
      """#,
      #"""
      {"fDouble":"NaN","fFloat":"-Infinity","fBytes":"/w==","fEnum":7}
      """#
    ),
    (
      "scalars_negzero", "canonicaltest.Scalars",
      #"""
      090000000000000080
      """#,
      #"""
      {"fDouble":-0.0}
      """#
    ),
    (
      "scalars_small_double", "canonicaltest.Scalars",
      #"""
      0901000000000000001501000000
      """#,
      #"""
      {"fDouble":5e-324,"fFloat":1e-45}
      """#
    ),
    (
      "scalars_big_double", "canonicaltest.Scalars",
      #"""
      099c7500883ce4377e15ffff7f7f
      """#,
      #"""
      {"fDouble":1e+300,"fFloat":3.4028235e+38}
      """#
    ),
    (
      "scalars_empty", "canonicaltest.Scalars",
      #"""

      """#,
      #"""
      {}
      """#
    ),
    (
      "repeats", "canonicaltest.Repeats",
      #"""
      0a18000000000000f03f000000000000f07f000000000000e0bf1208cdcccc3dcdcc4c3e1a0cffffffffffffffffff010001\#
      221400ffffffffffffffffff01ffffffffffffffff7f2a0affffffffffffffffff01320205063a0800000000010000004208\#
      00000000000000804a02010052005201615a005a02000162030001636a0218016a00
      """#,
      #"""
      {"rDouble":[1,"Infinity",-0.5],"rFloat":[0.1,0.2],"rInt32":[-1,0,1],"rInt64":["0","-1","922337203685\#
      4775807"],"rUint64":["18446744073709551615"],"rSint32":[-3,3],"rFixed32":[0,1],"rSfixed64":["-922337\#
      2036854775808"],"rBool":[true,false],"rString":["","a"],"rBytes":["","AAE="],"rEnum":["COLOR_UNSPECI\#
      FIED","COLOR_RED",99],"rMessage":[{"fInt32":1},{}]}
      """#
    ),
    (
      "optionals_defaults", "canonicaltest.Optionals",
      #"""
      080010001a00200029000000000000000030003a00
      """#,
      #"""
      {"oInt32":0,"oInt64":"0","oString":"","oBool":false,"oDouble":0,"oEnum":"COLOR_UNSPECIFIED","oBytes"\#
      :""}
      """#
    ),
    (
      "optionals_set", "canonicaltest.Optionals",
      #"""
      08ffffffffffffffffff01100530024009
      """#,
      #"""
      {"oInt32":-1,"oInt64":"5","oEnum":"COLOR_GREEN","plainInt32":9}
      """#
    ),
    (
      "maps", "canonicaltest.Maps",
      #"""
      0a060a016b1201760a090a04c3a9225c1201780a040a001200120f08ffffffffffffffffff01120218031204080012001a09\#
      0801108080808080201a040800100022040805102a220d088080808080808080800110012a0a08ffffffff0f12026162320b\#
      081211000000000000f4bf320b081111000000000000f87f3a080a017312031a01743a120a016c120d320b0a091100000000\#
      0000f03f3a070a016e12020800
      """#,
      #"""
      {"stringToString":{"k":"v","é\"\\":"x","":""},"int32ToMessage":{"-1":{"fInt32":3},"0":{}},"boolToInt\#
      64":{"true":"1099511627776","false":"0"},"int64ToEnum":{"5":42,"-9223372036854775808":"COLOR_RED"},"\#
      uint32ToBytes":{"4294967295":"YWI="},"sint64ToDouble":{"9":-1.25,"-9":"NaN"},"stringToValue":{"s":"t\#
      ","l":[1],"n":null}}
      """#
    ),
    (
      "well_known", "canonicaltest.WellKnown",
      #"""
      0a370a29747970652e676f6f676c65617069732e636f6d2f63616e6f6e6963616c746573742e5363616c617273120a200572\#
      06696e20616e79121608ffffffffffffffffff011080b6ca91feffffffff011a0022200a07665f696e7433320a126e657374\#
      65642e6368696c645f6669656c640a01612a460a1f0a016b121a32180a0911000000000000f03f0a0b2a090a070a01781202\#
      08000a0a0a017312051a037374720a0e0a016e120911000000000000f8bf0a070a0162120220003209110000000000000840\#
      3a070a031a01780a00420b08ffb484af06108094ef3a4a0052050d0000003f5a0b08fdffffffffffffffff01620b08ffffff\#
      ffffffffffff016a00720208077a008201030a01738a01030a010092010b088092b8c398feffffff0192010d08ff82d1ffaf\#
      0710ff93ebdc0392010f08ffffffffffffffffff0110c0843d9201009a010208009a01009a01022001
      """#,
      #"""
      {"any":{"@type":"type.googleapis.com/canonicaltest.Scalars","fInt64":"5","fString":"in any"},"durati\#
      on":"-1.500s","empty":{},"fieldMask":"fInt32,nested.childField,a","struct":{"k":[1,{"x":null}],"s":"\#
      str","n":-1.5,"b":false},"value":3,"listValue":["x",null],"timestamp":"2024-02-29T23:59:59.123456Z",\#
      "doubleValue":0,"floatValue":0.5,"int64Value":"-3","uint64Value":"18446744073709551615","int32Value"\#
      :0,"uint32Value":7,"boolValue":false,"stringValue":"s","bytesValue":"AA==","timestamps":["0001-01-01\#
      T00:00:00Z","9999-12-31T23:59:59.999999999Z","1969-12-31T23:59:59.001Z","1970-01-01T00:00:00Z"],"val\#
      ues":[null,null,true]}
      """#
    ),
    (
      "well_known_2", "canonicaltest.WellKnown",
      #"""
      0a350a2d747970652e676f6f676c65617069732e636f6d2f676f6f676c652e70726f746f6275662e54696d657374616d7012\#
      040801100a120d0880bcaece970910ff93ebdc03220032202a1e0a1c0a046465657012142a120a100a066465657065721206\#
      32040a023200
      """#,
      #"""
      {"any":{"@type":"type.googleapis.com/google.protobuf.Timestamp","value":"1970-01-01T00:00:01.0000000\#
      10Z"},"duration":"315576000000.999999999s","fieldMask":"","value":{"deep":{"deeper":[[]]}}}
      """#
    ),
    (
      "well_known_3", "canonicaltest.WellKnown",
      #"""
      0a300a29747970652e676f6f676c65617069732e636f6d2f676f6f676c652e70726f746f6275662e56616c756512031a0176\#
      120b1098f8ffffffffffffff013200
      """#,
      #"""
      {"any":{"@type":"type.googleapis.com/google.protobuf.Value","value":"v"},"duration":"-0.000001s","va\#
      lue":null}
      """#
    ),
    (
      "well_known_4", "canonicaltest.WellKnown",
      #"""
      0a340a2e747970652e676f6f676c65617069732e636f6d2f676f6f676c652e70726f746f6275662e496e74363456616c7565\#
      1202080912020803
      """#,
      #"""
      {"any":{"@type":"type.googleapis.com/google.protobuf.Int64Value","value":"9"},"duration":"3s"}
      """#
    ),
    (
      "well_known_5", "canonicaltest.WellKnown",
      #"""
      0a2c0a226578616d706c652e636f6d2f782f63616e6f6e6963616c746573742e4e657374656412060a0210021001
      """#,
      #"""
      {"any":{"@type":"example.com/x/canonicaltest.Nested","child":{"level":2},"level":1}}
      """#
    ),
    (
      "well_known_7", "canonicaltest.WellKnown",
      #"""
      0a360a2d747970652e676f6f676c65617069732e636f6d2f676f6f676c652e70726f746f6275662e4669656c644d61736b12\#
      050a03615f6232023200
      """#,
      #"""
      {"any":{"@type":"type.googleapis.com/google.protobuf.FieldMask","value":"aB"},"value":[]}
      """#
    ),
    (
      "well_known_any_map", "canonicaltest.WellKnown",
      #"""
      0a320a26747970652e676f6f676c65617069732e636f6d2f63616e6f6e6963616c746573742e4d61707312080a060a016112\#
      0162
      """#,
      #"""
      {"any":{"@type":"type.googleapis.com/canonicaltest.Maps","stringToString":{"a":"b"}}}
      """#
    ),
    (
      "well_known_empty_parts", "canonicaltest.WellKnown",
      #"""
      0a002a003a00
      """#,
      #"""
      {"any":{},"struct":{},"listValue":[]}
      """#
    ),
    (
      "choice_text_empty", "canonicaltest.Choice",
      #"""
      0a00
      """#,
      #"""
      {"text":""}
      """#
    ),
    (
      "choice_number_zero", "canonicaltest.Choice",
      #"""
      1000
      """#,
      #"""
      {"number":0}
      """#
    ),
    (
      "choice_color_zero", "canonicaltest.Choice",
      #"""
      2000
      """#,
      #"""
      {"color":"COLOR_UNSPECIFIED"}
      """#
    ),
    (
      "choice_nothing", "canonicaltest.Choice",
      #"""
      280032017a
      """#,
      #"""
      {"nothing":null,"after":"z"}
      """#
    ),
    (
      "choice_scalars_empty", "canonicaltest.Choice",
      #"""
      1a00
      """#,
      #"""
      {"scalars":{}}
      """#
    ),
    (
      "custom_name", "canonicaltest.CustomName",
      #"""
      0a017610021a0162
      """#,
      #"""
      {"customKey":"v","field2":2,"fooBarBaz":"b"}
      """#
    ),
  ]
}
