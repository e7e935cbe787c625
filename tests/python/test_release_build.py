"""The flags every release build gets (tools/release-flags, used by tools/build-release and
deploy/Dockerfile) and the profile they optimize with (tools/pgo, recorded by
tools/profile-gateway)."""
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "tools" / "pgo" / "vllm-grpc-gateway.profdata"


def release_flags(env=None):
    return subprocess.run([str(ROOT / "tools" / "release-flags")], capture_output=True, text=True, check=True,
                          env=env).stdout.splitlines()


def function_counts():
    """Each function of the profile with its largest counter (a block or edge's count), from
    `llvm-profdata show --counts`."""
    shown = subprocess.run([str(ROOT / "tools" / "llvm-profdata"), "show", "--all-functions", "--counts", str(PROFILE)],
                           capture_output=True, text=True, check=True).stdout
    counts, name = {}, None
    for line in shown.splitlines():
        if line.startswith("  ") and not line.startswith("    ") and line.rstrip().endswith(":"):
            name = line.strip()[:-1]
        elif name and line.strip().startswith("Block counts:"):
            counts[name] = max(int(count) for count in re.findall(r"\d+", line.split(":", 1)[1]))
    return counts


CODE_GENERATION = [
    "-Xswiftc", "-enforce-exclusivity=unchecked",
    "-Xswiftc", "-Xfrontend", "-Xswiftc", "-enable-lexical-lifetimes=false",
]


def test_release_builds_drop_exclusivity_checks_end_lifetimes_at_last_use_and_use_the_committed_profile():
    assert release_flags() == CODE_GENERATION + ["-Xswiftc", "-Xfrontend", "-Xswiftc", f"-ir-profile-use={PROFILE}"]


def test_the_profile_is_recorded_from_code_generated_as_the_release_build_generates_it():
    """A profile counted from differently generated code matches fewer of the release build's
    functions: tools/profile-gateway builds with the release build's own code generation flags."""
    script = (ROOT / "tools" / "profile-gateway").read_text()
    instrumented = re.search(r"^flags=\((.*?)\)$", script, re.MULTILINE | re.DOTALL).group(1).split()
    assert instrumented[:len(CODE_GENERATION)] == CODE_GENERATION


def test_a_profile_this_toolchain_cannot_read_is_left_out(tmp_path):
    """Another LLVM's profile format must not stop a build: the flags go without it."""
    toolchain = tmp_path / "toolchain"
    toolchain.mkdir()
    # swiftc is only located, never run: tools/llvm-profdata runs the one beside it.
    for name, script in [("swiftc", "exit 1"),
                         ("llvm-profdata", "echo 'unsupported instrumentation profile format version' >&2; exit 1")]:
        (toolchain / name).write_text(f"#!/bin/sh\n{script}\n")
        (toolchain / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{toolchain}:{os.environ['PATH']}"}
    assert release_flags(env) == CODE_GENERATION


def test_the_profile_counts_every_layer_of_the_hot_path():
    """Recorded from a gateway under load: the calls' own functions in each layer ran thousands of
    times (tools/profile_gateway.py makes 20,000 unary calls a setup)."""
    counts = function_counts()
    layers = {
        "HTTP/2 transport": "10GRPCServer21HTTP2ServerConnection",
        "upstream HTTP/1.1": "10VLLMClient16UpstreamExchange",
        "JSON to protobuf": "9ProtoJSON13ReplyTemplate",
        "unary calls": "7Gateway17UnaryUpstreamCall",
        "streamed calls": "7Gateway21StreamingUpstreamCall",
        "fleet routing": "5Fleet",
        "SwiftNIO": "8NIOPosix17BaseSocketChannel",
    }
    for layer, symbol in layers.items():
        hottest = max((count for name, count in counts.items() if symbol in name), default=0)
        assert hottest >= 10000, f"{layer}: its hottest function ({symbol}) counted {hottest}"


def test_the_profile_is_sparse():
    """Functions the loads never ran have no entry, so they are optimized as without a profile
    rather than as cold code: a gateway's TLS handshake path or a simulator's handlers lose
    nothing to it."""
    counts = function_counts()
    # A file-local function is named by its object file ("….o;name"), and two of them in one file
    # (closures' object destroyers) can share a name, the record of one run beside the other's.
    never_run = [name for name, count in counts.items() if count == 0 and ".o;" not in name]
    assert counts and not never_run, never_run[:5]
    # In the instrumented gateway, never called by the loads (they call only known methods).
    assert not [name for name in counts if "unknownMethodStatus" in name]
