import Foundation
import ProtoJSON

/// GET /v1/models, in vLLM's shape, and POST /admin/models, the simulator's own way to change
/// what it serves while running (a fleet test taking a model off one instance).
enum ModelList {
  static func body(models: [String], maxModelLength: Int) -> [UInt8] {
    var json = JSONWriter()
    json.beginObject()
    json.key("object")
    json.string("list")
    json.key("data")
    json.beginArray()
    for model in models {
      json.beginObject()
      json.key("id")
      json.string(model)
      json.key("object")
      json.string("model")
      json.key("created")
      json.int(1_795_562_980)
      json.key("owned_by")
      json.string("vllm")
      json.key("root")
      json.string("/models/\(model)")
      json.key("parent")
      json.null()
      json.key("max_model_len")
      json.int(Int64(maxModelLength))
      json.key("permission")
      json.beginArray()
      json.beginObject()
      json.key("id")
      json.string("modelperm-sim")
      json.key("object")
      json.string("model_permission")
      json.key("allow_sampling")
      json.bool(true)
      json.key("organization")
      json.string("*")
      json.key("group")
      json.null()
      json.endObject()
      json.endArray()
      json.endObject()
    }
    json.endArray()
    json.endObject()
    return json.bytes
  }

  /// The new model set from `{"models": ["a", "b"]}`, without repeats; nil unless it names at
  /// least one model, since a vLLM instance always serves one.
  static func replacement(from body: [UInt8]) -> [String]? {
    guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any],
      let names = object["models"] as? [String]
    else { return nil }
    let models = unique(names.filter { !$0.isEmpty })
    return models.isEmpty ? nil : models
  }

  /// `names` in order, each once.
  static func unique(_ names: [String]) -> [String] {
    var seen = Set<String>()
    return names.filter { seen.insert($0).inserted }
  }
}
