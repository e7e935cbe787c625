#!/usr/bin/env bash
# Builds the C++ example with Debian's libgrpc++-dev, protobuf-compiler-grpc and g++:
#   examples/cpp/build.sh OUT_DIR      → OUT_DIR/chat-client
# The stubs of proto/vllmgateway/v1 (service.proto imports all of them) and of rpc_status.proto
# are generated into OUT_DIR/gen, and the files are compiled two at a time.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$(mkdir -p "$1" && cd "$1" && pwd)
gen="$out/gen"
mkdir -p "$gen" "$out/obj"

(cd "$root/proto" && protoc -I . -I /usr/include --cpp_out="$gen" vllmgateway/v1/*.proto)
(cd "$root/proto" && protoc -I . -I /usr/include --grpc_out="$gen" \
  --plugin=protoc-gen-grpc="$(command -v grpc_cpp_plugin)" vllmgateway/v1/service.proto)
(cd "$here" && protoc -I . -I /usr/include --cpp_out="$gen" rpc_status.proto)

flags=(-std=c++17 -O1 -I"$gen")
read -ra cflags <<<"$(pkg-config --cflags grpc++ protobuf)"
read -ra libs <<<"$(pkg-config --libs grpc++ protobuf)"
sources=("$here/chat_client.cc" "$gen"/*.pb.cc "$gen"/vllmgateway/v1/*.pb.cc)
for source in "${sources[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "${JOBS:-2}" ]; do wait -n; done
  g++ "${flags[@]}" "${cflags[@]}" -c "$source" -o "$out/obj/$(basename "$source").o" &
done
while [ -n "$(jobs -rp)" ]; do wait -n; done
g++ -o "$out/chat-client" "$out"/obj/*.o "${libs[@]}"
