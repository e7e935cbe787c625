#!/usr/bin/env bash
# Regenerates the Swift stubs of proto/vllmgateway/v1 (service.proto imports all of them) into
# Sources/ChatClient/Generated, or into OUT_DIR:   ./generate-stubs.sh [OUT_DIR]
# protoc-gen-swift (swift-protobuf) writes the messages, protoc-gen-grpc-swift-2
# (grpc-swift-protobuf) the client stub; both are built from this package's own dependencies, so
# they match the libraries the example links. The output is committed: `swift build` runs no
# code generation.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$here/Sources/ChatClient/Generated}

cd "$here"
swift build --product protoc-gen-swift
swift build --product protoc-gen-grpc-swift-2
bin=$(swift build --show-bin-path)

mkdir -p "$out" && rm -f "$out"/*.pb.swift "$out"/*.grpc.swift
cd "$root/proto"
protoc -I . -I /usr/include --plugin="$bin/protoc-gen-swift" \
  --swift_out="$out" --swift_opt=FileNaming=PathToUnderscores vllmgateway/v1/*.proto
protoc -I . -I /usr/include --plugin="$bin/protoc-gen-grpc-swift-2" \
  --grpc-swift-2_out="$out" --grpc-swift-2_opt=FileNaming=PathToUnderscores,Client=true,Server=false \
  vllmgateway/v1/service.proto
