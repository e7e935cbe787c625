import Foundation
import ProtoJSON

/// Embeddings, rerank and score answers: deterministic vectors and scores derived from the text,
/// in vLLM 0.32's shapes.
public enum PoolingBodies {
  /// A unit vector for a text.
  static func vector(for text: String, dimensions: Int) -> [Float] {
    var state: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 { state = (state ^ UInt64(byte)) &* 0x100_0000_01b3 }
    var values = [Float](repeating: 0, count: dimensions)
    for index in 0..<dimensions {
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      values[index] = Float(Int64(bitPattern: state >> 11) % 2001 - 1000) / 1000
    }
    let norm = sqrt(values.reduce(0) { $0 + $1 * $1 })
    return norm > 0 ? values.map { $0 / norm } : values
  }

  public static func embeddings(inputs: [String], model: String, dimensions: Int, base64: Bool) -> [UInt8] {
    var json = JSONWriter(capacity: inputs.count * dimensions * 12 + 256)
    json.beginObject()
    json.key("id")
    json.string(Generation.identifier("embd-"))
    json.key("object")
    json.string("list")
    json.key("created")
    json.int(Int64(Date().timeIntervalSince1970))
    json.key("model")
    json.string(model)
    json.key("data")
    json.beginArray()
    var tokens = 0
    for (index, input) in inputs.enumerated() {
      tokens += Generation.promptTokens(input)
      let vector = vector(for: input, dimensions: dimensions)
      json.beginObject()
      json.key("index")
      json.int(Int64(index))
      json.key("object")
      json.string("embedding")
      json.key("embedding")
      if base64 {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(vector.count * 4)
        for value in vector {
          let bits = value.bitPattern
          bytes += [UInt8(bits & 0xFF), UInt8(bits >> 8 & 0xFF), UInt8(bits >> 16 & 0xFF), UInt8(bits >> 24)]
        }
        json.string(Base64Standard.encode(bytes))
      } else {
        json.beginArray()
        for value in vector { json.double(Double(value)) }
        json.endArray()
      }
      json.endObject()
    }
    json.endArray()
    json.key("usage")
    json.beginObject()
    json.key("prompt_tokens")
    json.int(Int64(tokens))
    json.key("total_tokens")
    json.int(Int64(tokens))
    json.key("completion_tokens")
    json.int(0)
    json.key("prompt_tokens_details")
    json.null()
    json.endObject()
    json.endObject()
    return json.bytes
  }

  static func score(_ query: String, _ document: String) -> Double {
    let a = vector(for: query, dimensions: 32)
    let b = vector(for: document, dimensions: 32)
    return Double(zip(a, b).reduce(0) { $0 + $1.0 * $1.1 })
  }

  static func rerank(query: String, documents: [String], topN: Int?, model: String) -> [UInt8] {
    var ranked = documents.enumerated().map { (index: $0.offset, text: $0.element, score: score(query, $0.element)) }
    ranked.sort { $0.score > $1.score }
    if let topN, topN > 0 { ranked = Array(ranked.prefix(topN)) }
    var json = JSONWriter()
    json.beginObject()
    json.key("id")
    json.string(Generation.identifier("rerank-"))
    json.key("model")
    json.string(model)
    let tokens = documents.reduce(Generation.promptTokens(query)) { $0 + Generation.promptTokens($1) }
    json.key("usage")
    json.beginObject()
    json.key("prompt_tokens")
    json.int(Int64(tokens))
    json.key("total_tokens")
    json.int(Int64(tokens))
    json.endObject()
    json.key("results")
    json.beginArray()
    for result in ranked {
      json.beginObject()
      json.key("index")
      json.int(Int64(result.index))
      json.key("document")
      json.beginObject()
      json.key("text")
      json.string(result.text)
      json.key("multi_modal")
      json.null()
      json.endObject()
      json.key("relevance_score")
      json.double(result.score)
      json.endObject()
    }
    json.endArray()
    json.endObject()
    return json.bytes
  }

  static func scores(pairs: [(String, String)], model: String) -> [UInt8] {
    var json = JSONWriter()
    json.beginObject()
    json.key("id")
    json.string(Generation.identifier("score-"))
    json.key("object")
    json.string("list")
    json.key("created")
    json.int(Int64(Date().timeIntervalSince1970))
    json.key("model")
    json.string(model)
    json.key("data")
    json.beginArray()
    for (index, pair) in pairs.enumerated() {
      json.beginObject()
      json.key("index")
      json.int(Int64(index))
      json.key("object")
      json.string("score")
      json.key("score")
      json.double(score(pair.0, pair.1))
      json.endObject()
    }
    json.endArray()
    let tokens = pairs.reduce(0) { $0 + Generation.promptTokens($1.0) + Generation.promptTokens($1.1) }
    json.key("usage")
    json.beginObject()
    json.key("prompt_tokens")
    json.int(Int64(tokens))
    json.key("total_tokens")
    json.int(Int64(tokens))
    json.endObject()
    json.endObject()
    return json.bytes
  }
}
