#!/usr/bin/env bash
# Builds the Go example offline with Debian's packages (golang-go, golang-google-grpc-dev,
# golang-github-golang-protobuf-1-5-dev, protoc-gen-go, protoc-gen-go-grpc) in GOPATH mode:
#   examples/go/build.sh OUT_DIR      → OUT_DIR/chat-client
# The stubs are generated into OUT_DIR/gopath/src/vllmgateway/v1 (package vllmgatewayv1); the
# go_package of each .proto is given with M options, so the .proto files stay as they are.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$(mkdir -p "$1" && cd "$1" && pwd)

mapping=""
for proto in "$root"/proto/vllmgateway/v1/*.proto; do
  mapping+=",Mvllmgateway/v1/$(basename "$proto")=vllmgateway/v1;vllmgatewayv1"
done
mkdir -p "$out/gopath/src"
(cd "$root/proto" && protoc -I . -I /usr/include \
  --go_out="$out/gopath/src" --go_opt="paths=import$mapping" \
  --go-grpc_out="$out/gopath/src" --go-grpc_opt="paths=import$mapping" \
  vllmgateway/v1/*.proto)

export GO111MODULE=off GOPATH="$out/gopath:/usr/share/gocode"
go build -o "$out/chat-client" "$here/chat_client.go"
