import Foundation
import NIOCore
import NIOHTTP1
import ProtoJSON

/// /v1/audio/transcriptions and /v1/audio/translations, shaped like vLLM 0.32's Whisper
/// serving: JSON even for response_format=text, 400 for srt and vtt, chat-like stream chunks.
struct AudioAnswer {
  /// The form as JSON, for /stats: every field, and the file's name and size.
  static func describe(body: [UInt8], contentType: String) -> [UInt8] {
    var json = JSONWriter()
    json.beginObject()
    for part in MultipartParser.parts(body: body, contentType: contentType) ?? [] {
      if let filename = part.filename {
        json.key("filename")
        json.string(filename)
        json.key("file_bytes")
        json.int(Int64(part.body.count))
      } else {
        json.key(part.name)
        json.string(String(decoding: part.body, as: UTF8.self))
      }
    }
    json.endObject()
    return json.bytes
  }

  enum Outcome {
    case json(HTTPResponseStatus, [UInt8])
    case stream([[UInt8]])
  }

  static func answer(path: String, body: [UInt8], contentType: String, models: [String]) -> Outcome {
    let translation = path.hasSuffix("translations")
    guard let parts = MultipartParser.parts(body: body, contentType: contentType) else {
      return .json(
        .badRequest,
        ErrorBody.standard(status: 400, message: "Expected a multipart/form-data body", type: "Bad Request"))
    }
    var fields: [String: String] = [:]
    var file: ArraySlice<UInt8>? = nil
    for part in parts {
      if part.filename != nil || part.name == "file" {
        file = part.body
      } else {
        fields[part.name] = String(decoding: part.body, as: UTF8.self)
      }
    }
    guard let file, !file.isEmpty else {
      return .json(
        .badRequest, ErrorBody.standard(status: 400, message: "Field required", type: "Bad Request", param: "body.file")
      )
    }
    if let model = fields["model"], !model.isEmpty, !models.contains(model) {
      return .json(
        .notFound, ErrorBody.standard(status: 404, message: "The model `\(model)` does not exist.", param: "model"))
    }
    let format = fields["response_format"] ?? "json"
    guard ["json", "text", "verbose_json"].contains(format) else {
      if ["srt", "vtt", "diarized_json"].contains(format) {
        return .json(
          .badRequest,
          ErrorBody.standard(
            status: 400,
            message: "Currently only support response_format: `text`, `json`, `verbose_json` or `diarized_json`"))
      }
      return .json(
        .badRequest,
        ErrorBody.standard(
          status: 400, message: "Input should be 'json', 'text', 'srt', 'verbose_json' or 'vtt'", type: "Bad Request",
          param: "body.response_format"))
    }
    // A "transcription" derived from the audio bytes: the same audio always reads the same.
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in file.prefix(4096) { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
    let words = Generation.tokens(for: String(hash), count: 6)
    let text = words.joined().trimmingCharacters(in: .whitespaces)
    let seconds = max(1, (file.count + 31_999) / 32_000)
    let model = fields["model"].flatMap { $0.isEmpty ? nil : $0 } ?? models[0]
    if fields["stream"] == "true" {
      let id = (translation ? "translate-" : "transcribe-") + String(hash, radix: 16)
      let object = translation ? "translation.chunk" : "transcription.chunk"
      let created = Int64(Date().timeIntervalSince1970)
      var events: [[UInt8]] = []
      for (index, word) in words.enumerated() {
        var json = JSONWriter()
        json.beginObject()
        json.key("id")
        json.string(id)
        json.key("object")
        json.string(object)
        json.key("created")
        json.int(created)
        json.key("model")
        json.string(model)
        json.key("choices")
        json.beginArray()
        json.beginObject()
        json.key("delta")
        json.beginObject()
        json.key("content")
        json.string(word)
        json.endObject()
        if index == words.count - 1 {
          json.key("finish_reason")
          json.string("stop")
          json.key("stop_reason")
          json.null()
        }
        json.endObject()
        json.endArray()
        json.endObject()
        events.append(json.bytes)
      }
      if fields["stream_include_usage"] == "true" {
        let prompt = 4 + 100 * seconds
        events.append(
          Array(
            "{\"id\":\"\(id)\",\"object\":\"\(object)\",\"created\":\(created),\"model\":\"\(model)\",\"choices\":[],\"usage\":{\"prompt_tokens\":\(prompt),\"total_tokens\":\(prompt + words.count),\"completion_tokens\":\(words.count)}}"
              .utf8))
      }
      events.append(Array("[DONE]".utf8))
      return .stream(events)
    }
    var json = JSONWriter()
    json.beginObject()
    if format == "verbose_json" {
      json.key("duration")
      json.double(Double(seconds))
      json.key("language")
      json.string(translation ? "en" : (fields["language"] ?? "en"))
      json.key("text")
      json.string(text)
      json.key("segments")
      json.beginArray()
      json.beginObject()
      for (key, value) in [("id", 0.0), ("seek", 0.0), ("start", 0.0), ("end", Double(seconds))] {
        json.key(key)
        json.double(value)
      }
      json.key("text")
      json.string(text)
      json.key("tokens")
      json.beginArray()
      json.int(1)
      json.int(2)
      json.endArray()
      for (key, value) in [("temperature", 0.0), ("avg_logprob", -0.5), ("compression_ratio", 1.25)] {
        json.key(key)
        json.double(value)
      }
      json.key("no_speech_prob")
      json.null()
      json.endObject()
      json.endArray()
      json.key("words")
      json.null()
    } else {
      json.key("text")
      json.string(text)
      if !translation {
        json.key("usage")
        json.beginObject()
        json.key("type")
        json.string("duration")
        json.key("seconds")
        json.int(Int64(seconds))
        json.endObject()
      }
    }
    json.endObject()
    return .json(.ok, json.bytes)
  }
}
