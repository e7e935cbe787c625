import GRPCInteropService
import GRPCServer
import GRPCStandardServices
import Logging
import NIOCore
import NIOEmbedded

/// libFuzzer entry point: feeds arbitrary bytes to one gRPC connection serving the interop,
/// health and reflection services, then closes it. The first byte is a control byte: when odd,
/// the valid HTTP/2 client preface goes first, so the fuzzer reaches both the preface check and
/// everything behind it; when bit 1 is set, the connection starts with the handler that tells
/// HTTP/1.1 (gRPC-Web and Connect) from HTTP/2, as the server installs it. tools/fuzz builds and
/// runs it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  guard size > 0 else { return 0 }
  FuzzedConnection.run(
    preface: data[0] & 1 == 1, sniffing: data[0] & 2 == 2,
    input: UnsafeBufferPointer(start: data + 1, count: size - 1))
  return 0
}

enum FuzzedConnection {
  static let router: Router = {
    let reflection = ReflectionService.bothVersions(
      descriptorSet: ReflectionService.bundledDescriptorSet, services: ReflectionService.serviceNames)!
    return Router([TestService(), HealthService()] + reflection as [any ServiceProvider])
  }()

  static let logger = Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })

  /// Returns how many bytes the server wrote back.
  @discardableResult
  static func run(preface: Bool, sniffing: Bool = false, input: UnsafeBufferPointer<UInt8>) -> Int {
    var configuration = ServerConfiguration()
    configuration.maximumReceiveMessageSize = 64 * 1024
    configuration.web = WebConfiguration(allowedOrigins: ["http://allowed.test"])
    let channel = EmbeddedChannel(
      handler: sniffing
        ? GRPCServer.makeSniffingConnectionHandler(router: router, configuration: configuration, logger: logger)
        : GRPCServer.makeConnectionHandler(router: router, configuration: configuration, logger: logger))
    _ = try? channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    var buffer = channel.allocator.buffer(capacity: input.count + 24)
    if preface { buffer.writeString("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") }
    buffer.writeBytes(UnsafeRawBufferPointer(input))
    // Half the input in one read, the rest in another, so state carries across reads.
    let half = buffer.readSlice(length: buffer.readableBytes / 2)!
    _ = try? channel.writeInbound(half)
    _ = try? channel.writeInbound(buffer)
    channel.embeddedEventLoop.advanceTime(by: .seconds(60))
    var written = 0
    // HTTP/1.1 answers leave the pipeline as bytes too: the response encoder is part of it.
    while let out = try? channel.readOutbound(as: ByteBuffer.self) { written += out.readableBytes }
    _ = try? channel.finish()
    return written
  }
}
