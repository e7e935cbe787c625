// swift-tools-version:6.1
// A Swift client of vllm-grpc-gateway, in a package of its own so that the gateway's build does
// not grow. The stubs in Sources/ChatClient/Generated are committed; ./generate-stubs.sh makes them.
import PackageDescription

let package = Package(
  name: "vllm-gateway-swift-example",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "chat-client", targets: ["ChatClient"])
  ],
  dependencies: [
    .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
    .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
    .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
    // No default traits, as grpc-swift-protobuf asks: they would pull Foundation into SwiftProtobuf.
    .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0", traits: []),
  ],
  targets: [
    .executableTarget(
      name: "ChatClient",
      dependencies: [
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
        .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ],
      swiftSettings: [.swiftLanguageMode(.v6)]
    )
  ]
)
