import Foundation
import ProtoJSON
import Testing

@testable import Gateway

/// The key orders the gateway gives its translator are vLLM's (every recorded reply and chunk
/// lists its keys in that order), and with them every recording translates to the same protobuf
/// as with the schema's own order.
@Suite struct VLLMKeyOrderTests {
  /// A recorded exchange's path and the JSON objects vLLM answered with (a body, or the events).
  struct Answer {
    let file: String
    let path: String
    let isStream: Bool
    let objects: [[UInt8]]
  }

  static let answers: [Answer] = {
    let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("tests/fixtures/vllm-recordings")
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
    return names.filter { $0.hasSuffix(".http") }.sorted().compactMap { name in
      guard let data = try? Data(contentsOf: directory.appendingPathComponent(name)) else { return nil }
      let text = String(decoding: data, as: UTF8.self)
      let lines = text.split(separator: "\n")
      guard lines.count > 1, let path = lines[1].split(separator: " ").dropFirst().first,
        let response = text.range(of: "\n### RESPONSE"), text[response.upperBound...].contains(" 200 ")
      else { return nil }
      // curl -i kept the response's CRLFs, which Swift reads as one Character.
      let answerLines = text[response.upperBound...].split { $0 == "\n" || $0 == "\r\n" }
      let isStream = answerLines.contains { $0.hasPrefix("data: {") }
      let objects = answerLines.compactMap { line -> [UInt8]? in
        let json = line.hasPrefix("data: ") ? line.dropFirst(6) : line
        return json.hasPrefix("{") && !json.hasPrefix("{\"error\"") ? Array(json.utf8) : nil
      }
      return Answer(file: name, path: String(path), isStream: isStream, objects: objects)
    }
  }()

  /// Where each ordered message stands in vLLM's answers: the path's objects, by the keys
  /// leading to them ("[]": each element of an array).
  static func placements(of answer: Answer) -> [(message: String, steps: [String])] {
    let package = "vllmgateway.v1."
    switch (answer.path, answer.isStream) {
    case ("/v1/chat/completions", false):
      return [
        (package + "ChatCompletion", []), (package + "ChatChoice", ["choices", "[]"]),
        (package + "ChatReply", ["choices", "[]", "message"]), (package + "Usage", ["usage"]),
      ]
    case ("/v1/chat/completions", true):
      return [(package + "ChatCompletionChunk", []), (package + "Usage", ["usage"])]
    case ("/v1/completions", false):
      return [
        (package + "Completion", []), (package + "CompletionChoice", ["choices", "[]"]), (package + "Usage", ["usage"]),
      ]
    default:
      return []
    }
  }

  /// The keys, in order, of each object found by `steps` from the reader's value.
  static func keySequences(_ reader: inout JSONReader, _ steps: ArraySlice<String>, into found: inout [[String]]) throws
  {
    let kind = try reader.peekKind()
    guard let step = steps.first else {
      guard kind == .object else { return try reader.skipValue() }
      try reader.beginObject()
      var keys: [String] = []
      while let key = try reader.nextKey() {
        keys.append(String(decoding: key, as: UTF8.self))
        try reader.skipValue()
      }
      found.append(keys)
      return
    }
    if step == "[]" {
      guard kind == .array else { return try reader.skipValue() }
      try reader.beginArray()
      while try reader.nextElement() { try keySequences(&reader, steps.dropFirst(), into: &found) }
      return
    }
    guard kind == .object else { return try reader.skipValue() }
    try reader.beginObject()
    while let key = try reader.nextKey() {
      if key == Array(step.utf8) {
        try keySequences(&reader, steps.dropFirst(), into: &found)
      } else {
        try reader.skipValue()
      }
    }
  }

  @Test func everyOrderedMessageIsInTheSchema() {
    for name in VLLMKeyOrder.byMessage.keys { #expect(Schema.bundled.message(name) != nil, "\(name)") }
  }

  @Test func recordedAnswersListTheirKeysInTheOrdersGiven() throws {
    var checked: [String: Int] = [:]
    for answer in Self.answers {
      for placement in Self.placements(of: answer) {
        let order = try #require(VLLMKeyOrder.byMessage[placement.message])
        for object in answer.objects {
          var reader = JSONReader(object)
          var sequences: [[String]] = []
          try Self.keySequences(&reader, placement.steps[...], into: &sequences)
          for keys in sequences {
            let positions = keys.map { order.firstIndex(of: $0) }
            #expect(!positions.contains(nil), "\(answer.file): \(placement.message) keys \(keys) not all in \(order)")
            let known = positions.compactMap { $0 }
            #expect(known == known.sorted(), "\(answer.file): \(placement.message) keys \(keys) out of order")
            checked[placement.message, default: 0] += 1
          }
        }
      }
    }
    // Every ordered message was seen in a recording, most many times.
    for name in VLLMKeyOrder.byMessage.keys {
      #expect(checked[name, default: 0] > 0, "\(name) never recorded; checked \(checked)")
    }
    #expect(checked.values.reduce(0, +) > 200)
  }

  @Test func recordedAnswersTranslateAsWithTheSchemaOrder() throws {
    let ordered = JSONToProto(schema: .vllmOrdered)
    let plain = JSONToProto(schema: .bundled)
    var translated = 0
    for answer in Self.answers {
      guard let top = Self.placements(of: answer).first else { continue }
      for object in answer.objects {
        let expected = try plain.proto(from: object, typeName: top.message)
        #expect(try ordered.proto(from: object, typeName: top.message) == expected, "\(answer.file)")
        translated += 1
      }
    }
    #expect(translated > 100)
  }
}
