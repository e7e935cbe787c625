import Fleet
import Foundation
import GRPCServer
import ProtoJSON
import VLLMClient

/// Transcriptions and translations in SRT or VTT, which vLLM refuses: the gateway asks for
/// verbose_json and writes the subtitles from its timed segments (one cue for the whole text
/// when the model produced no segments).
final class SubtitleTranscriptionCall: RoutedResponseHandler {
  enum Format: String {
    case srt, vtt
  }

  private let call: ServerCall
  private let operation: Operation
  private let context: GatewayContext
  private let format: Format
  private var upstream: VLLMCall? = nil

  init(call: ServerCall, operation: Operation, context: GatewayContext, format: Format) {
    self.call = call
    self.operation = operation
    self.context = context
    self.format = format
  }

  /// The subtitle format a TranscriptionRequest asks for (response_format is field 6), if any.
  static func requestedFormat(_ request: [UInt8]) -> Format? {
    (try? UpstreamRequestBody.topLevelString(field: 6, in: request)).flatMap { $0.flatMap(Format.init) }
  }

  func start(request: [UInt8]) {
    var model: [String: String] = ["response_format": "verbose_json"]
    if let name = try? UpstreamRequestBody.prefixedModel(in: request) { model["model"] = name }
    var form: MultipartForm
    do {
      form = try MultipartForm.transcription(from: request, schema: context.toJSON.schema, overrides: model)
    } catch {
      call.finish(Status(.internal, "could not read \(operation.requestType): \(error)"))
      return
    }
    let contentType = form.contentType
    upstream = context.startUpstream(
      for: call, path: operation.upstreamPath, body: form.finish(), contentType: contentType, handler: self)
  }

  var vllmWantsMore: Bool { true }

  func vllmEvent(_ event: ServerSentEvent) {}

  func vllmFinished(_ outcome: VLLMOutcome) {
    upstream = nil
    switch outcome {
    case .failed(let error):
      call.finish(UpstreamStatus.error(error))
    case .streamEnded:
      call.finish(Status(.internal, "vLLM answered a transcription with an event stream"))
    case .body(let body, _, _):
      guard var object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
        call.finish(Status(.unavailable, "vLLM's verbose_json reply is not a JSON object"))
        return
      }
      object["text"] = Self.subtitles(object, format: format)
      object["response_format"] = format.rawValue
      do {
        let json = try [UInt8](JSONSerialization.data(withJSONObject: object))
        call.respond(try context.toProto.proto(from: json, typeName: operation.responseType))
      } catch {
        call.finish(Status(.internal, "could not build the \(format.rawValue) reply: \(error)"))
      }
    }
  }

  static func subtitles(_ verbose: [String: Any], format: Format) -> String {
    var cues: [(start: Double, end: Double, text: String)] = []
    for segment in verbose["segments"] as? [[String: Any]] ?? [] {
      let text = (segment["text"] as? String ?? "").trimmingCharacters(in: .whitespaces)
      cues.append((number(segment["start"]), number(segment["end"]), text))
    }
    if cues.isEmpty {
      let text = (verbose["text"] as? String ?? "").trimmingCharacters(in: .whitespaces)
      cues.append((0, number(verbose["duration"]), text))
    }
    var out = format == .vtt ? "WEBVTT\n\n" : ""
    for (index, cue) in cues.enumerated() {
      if format == .srt { out += "\(index + 1)\n" }
      out += "\(timestamp(cue.start, format)) --> \(timestamp(cue.end, format))\n\(cue.text)\n\n"
    }
    return out
  }

  private static func number(_ value: Any?) -> Double {
    (value as? NSNumber)?.doubleValue ?? 0
  }

  private static func timestamp(_ seconds: Double, _ format: Format) -> String {
    // Held to about 31 years: vLLM's times past Int's milliseconds (or not a number) trapped.
    let milliseconds = seconds.isNaN ? 0 : Int((min(max(seconds, 0), 1e9) * 1000).rounded())
    let hours = milliseconds / 3_600_000
    let minutes = milliseconds / 60_000 % 60
    let secs = milliseconds / 1000 % 60
    let fraction = milliseconds % 1000
    let separator = format == .srt ? "," : "."
    return String(format: "%02d:%02d:%02d%@%03d", hours, minutes, secs, separator, fraction)
  }
}
