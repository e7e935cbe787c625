import GRPCServer
import ProtoJSON

/// UploadTranscription: the parameters in the first message, then the audio in chunks. The audio
/// is gathered (up to a limit, as vLLM itself caps uploads) and sent as one multipart request
/// when the client half-closes.
final class TranscriptionUploadHandler: ServerCallHandler {
  /// vLLM refuses files over 25 MB; allow some room and no more.
  static let maximumAudioSize = 32 * 1024 * 1024

  private let call: ServerCall
  private let operation: Operation
  private let context: GatewayContext
  private var parameters: [UInt8]? = nil
  private var audio: [UInt8] = []

  init(call: ServerCall, operation: Operation, context: GatewayContext) {
    self.call = call
    self.operation = operation
    self.context = context
  }

  func didReceive(_ message: [UInt8]) {
    var reader = ProtoWireReader(message)
    do {
      while let field = try reader.next() {
        switch (field.number, field.wireType) {
        case (1, .lengthDelimited):
          guard parameters == nil else {
            call.finish(Status(.invalidArgument, "UploadTranscription takes the parameters once, in the first message"))
            return
          }
          parameters = try split(Array(message[field.range]))
        case (2, .lengthDelimited):
          guard parameters != nil else {
            call.finish(Status(.invalidArgument, "UploadTranscription needs the parameters before any audio"))
            return
          }
          guard audio.count + field.range.count <= Self.maximumAudioSize else {
            call.finish(Status(.resourceExhausted, "audio exceeds \(Self.maximumAudioSize) bytes"))
            return
          }
          audio.append(contentsOf: message[field.range])
        default:
          continue
        }
      }
    } catch {
      call.finish(Status(.internal, "could not parse TranscriptionUpload: \(error)"))
    }
  }

  func didReceiveEnd() {
    guard let parameters else {
      call.finish(Status(.invalidArgument, "UploadTranscription received no parameters"))
      return
    }
    guard !audio.isEmpty else {
      call.finish(Status(.invalidArgument, "UploadTranscription received no audio"))
      return
    }
    var request = ProtoWireWriter(capacity: parameters.count + audio.count + 16)
    request.lengthDelimited(2, audio)  // TranscriptionRequest.file
    let bytes = parameters + request.bytes
    audio = []
    if let format = SubtitleTranscriptionCall.requestedFormat(bytes) {
      SubtitleTranscriptionCall(call: call, operation: operation, context: context, format: format).start(
        request: bytes)
    } else {
      UnaryUpstreamCall(call: call, operation: operation, context: context).start(request: bytes)
    }
  }

  /// The parameters without their `file` field, whose bytes start the audio.
  private func split(_ parameters: [UInt8]) throws -> [UInt8] {
    var reader = ProtoWireReader(parameters)
    var rest = ProtoWireWriter(capacity: parameters.count)
    var start = 0
    while let field = try reader.next() {
      let end = reader.position
      if field.number == 2 && field.wireType == .lengthDelimited {
        audio.append(contentsOf: parameters[field.range])
      } else {
        rest.append(parameters[start..<end])
      }
      start = end
    }
    return rest.bytes
  }
}
