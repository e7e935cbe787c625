// swift-tools-version:6.0
import PackageDescription

// The modules every call runs through: the runtime's dynamic exclusivity checks (swift_beginAccess)
// cost about 4% of a call's instructions there (callgrind); their accesses stay on one event loop.
// tools/build-release, which every tool builds with, turns them off in the dependencies as well.
let hotPath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
  name: "vllm-grpc-gateway",
  platforms: [.macOS(.v14)],
  products: [
    .executable(name: "vllm-grpc-gateway", targets: ["vllm-grpc-gateway"]),
    .executable(name: "grpc-interop-server", targets: ["grpc-interop-server"]),
    .executable(name: "vllm-sim", targets: ["vllm-sim"]),
    .executable(name: "stream-latency-probe", targets: ["stream-latency-probe"]),
    .library(name: "GRPCServer", targets: ["GRPCServer"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
    .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
    .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
    .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
    .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
    .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
    .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
  ],
  targets: [
    .systemLibrary(
      name: "CNGHTTP2", pkgConfig: "libnghttp2",
      providers: [.apt(["libnghttp2-dev"])]),
    .systemLibrary(
      name: "CProtobufC", pkgConfig: "libprotobuf-c",
      providers: [.apt(["libprotobuf-c-dev"])]),
    .systemLibrary(
      name: "CZlib", pkgConfig: "zlib",
      providers: [.apt(["zlib1g-dev"])]),
    // nghttp2's allocations through a per-thread cache of freed blocks (see its source for why).
    .target(name: "CAllocationCache"),
    .target(
      name: "GatewayProtos",
      dependencies: ["CProtobufC"]),
    .target(
      name: "ProtobufCMessages",
      dependencies: ["CProtobufC"]),
    .target(
      name: "ProtoJSON",
      dependencies: ["GatewayProtos", "CProtobufC", "ProtobufCMessages"],
      swiftSettings: hotPath),
    .target(
      name: "GRPCServer",
      dependencies: [
        "CNGHTTP2", "CZlib", "CAllocationCache",
        .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        .product(name: "Atomics", package: "swift-atomics"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOExtras", package: "swift-nio-extras"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: hotPath),
    .target(
      name: "GRPCStandardServices",
      dependencies: [
        "GRPCServer", "GatewayProtos", "CProtobufC", "ProtobufCMessages",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "Logging", package: "swift-log"),
      ]),
    .target(
      name: "GRPCInteropService",
      dependencies: [
        "GRPCServer", "GRPCStandardServices", "GatewayProtos", "CProtobufC",
        .product(name: "NIOCore", package: "swift-nio"),
      ]),
    .target(name: "CStandardDescriptors"),
    .target(
      name: "ServerCLI",
      dependencies: [
        "GRPCServer", "CStandardDescriptors",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
      ]),
    .executableTarget(
      name: "grpc-interop-server",
      dependencies: [
        "GRPCStandardServices", "GRPCInteropService", "ServerCLI",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
      ],
      path: "Sources/InteropServer"),
    .executableTarget(
      name: "vllm-grpc-gateway",
      dependencies: [
        "Fleet", "GatewayConfig", "GRPCServer", "GRPCStandardServices", "ServerCLI", "Gateway", "VLLMClient",
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "OTel", package: "swift-otel"),
        .product(name: "Tracing", package: "swift-distributed-tracing"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        "ProtoJSON",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
      ]),
    // A libFuzzer target over one whole connection; tools/fuzz builds it with the fuzzer runtime.
    .executableTarget(
      name: "fuzz-http2-connection",
      dependencies: [
        "GRPCServer", "GRPCStandardServices", "GRPCInteropService", "FuzzSupport",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOEmbedded", package: "swift-nio"),
        .product(name: "Logging", package: "swift-log"),
      ],
      path: "Sources/FuzzHTTP2Connection"),
    // What the fuzz targets share: libFuzzer's driver, and replaying inputs without it.
    .target(name: "FuzzSupport"),
    // A libFuzzer target over what the gateway reads from vLLM: HTTP/1.1, event streams, JSON.
    .executableTarget(
      name: "fuzz-upstream-response",
      dependencies: [
        "VLLMClient", "ProtoJSON", "Gateway", "Fleet", "FuzzSupport",
        .product(name: "NIOCore", package: "swift-nio"),
      ],
      path: "Sources/FuzzUpstreamResponse"),
    // A libFuzzer target over request translation: a request message to the JSON (or form) vLLM gets.
    .executableTarget(
      name: "fuzz-request-json",
      dependencies: ["Gateway", "ProtoJSON", "FuzzSupport"],
      path: "Sources/FuzzRequestJSON"),
    .target(
      name: "VLLMClient",
      dependencies: [
        "ProtoJSON",
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: hotPath),
    .target(
      name: "Fleet",
      dependencies: [
        "VLLMClient", "ProtoJSON",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: hotPath),
    .target(
      name: "GatewayConfig",
      dependencies: [
        "Fleet", "Gateway", "ProtoJSON",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "Yams", package: "Yams"),
      ]),
    .target(
      name: "Gateway",
      dependencies: [
        "GRPCServer", "VLLMClient", "Fleet", "ProtoJSON",
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "CoreMetrics", package: "swift-metrics"),
        .product(name: "Prometheus", package: "swift-prometheus"),
        .product(name: "Tracing", package: "swift-distributed-tracing"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: hotPath),
    .target(
      name: "VLLMSimulator",
      dependencies: [
        "ProtoJSON",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
      ]),
    .executableTarget(
      name: "vllm-sim",
      dependencies: [
        "VLLMSimulator", "GRPCServer",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]),
    // The benchmark's client for per-chunk delays: reads vllm-sim's token stamps; see tools/bench.
    .executableTarget(
      name: "stream-latency-probe",
      dependencies: [
        "CNGHTTP2", "GRPCServer",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      path: "Sources/StreamLatencyProbe"),
    .executableTarget(
      name: "translation-bench",
      dependencies: ["ProtoJSON", "VLLMSimulator", "Gateway"],
      path: "Sources/TranslationBench"),
    .testTarget(
      name: "VLLMClientTests",
      dependencies: ["VLLMClient"]),
    .testTarget(
      name: "FleetTests",
      dependencies: [
        "Fleet", "VLLMClient",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
      ]),
    .testTarget(
      name: "GatewayConfigTests",
      dependencies: ["GatewayConfig", "Gateway", "Fleet", .product(name: "NIOCore", package: "swift-nio")]),
    .testTarget(
      name: "GatewayTests",
      dependencies: ["Gateway"]),
    .testTarget(
      name: "ProtoJSONTests",
      dependencies: ["ProtoJSON"]),
    .testTarget(
      name: "GRPCServerTests",
      dependencies: [
        "GRPCServer", "CAllocationCache",
        .product(name: "NIOCore", package: "swift-nio"),
      ]),
  ],
  swiftLanguageModes: [.v6]
)
