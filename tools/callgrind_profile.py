"""Where the instructions of one unary call or streamed chunk go, from the two callgrind outputs
`tools/bench-callgrind --keep DIR` leaves for a binary and mode (callgrind.<binary>.<mode>.<requests>,
few and many requests): each function's exclusive instructions in the larger run minus the
smaller, over the extra calls (or their chunks), so start-up and shutdown drop out.

  tools/callgrind-profile DIR/callgrind.0.unary.500 DIR/callgrind.0.unary.2500 [--top N]
  tools/callgrind-profile FEW MANY --callers swift_allocObject

The default prints the functions that cost most and the totals by layer (nghttp2, the Swift
runtime's reference counting and allocation, NIO, each of the gateway's modules). `--callers
SYMBOL` prints who calls the functions whose names hold SYMBOL, and how many times per unit,
counted from callgrind's call edges (exact, where `callgrind_annotate --tree=caller` mixes the
contexts of a function's callers).
"""

import argparse
import collections
import re
import subprocess
import sys
from pathlib import Path

# A unit is a unary call, or for streams one of the 128 chunks of each request (see
# bench_callgrind.per_unit).
CHUNKS_PER_STREAM = 128

LAYERS = [
    ("nghttp2", r"nghttp2"),
    ("Swift runtime: reference counts, allocation",
     r"swift_(retain|release|bridgeObject|isUniquely|allocObject|dealloc|slowAlloc|slowDealloc|arrayDestroy)"
     r"|RefCounts"),
    ("malloc and free", r"malloc|[^a-z]free|_int_|arena\.c"),
    ("libc memory functions", r"memcpy|memmove|memset|memcmp"),
    ("NIO", r"\$s(8NIOPosix|7NIOCore|8NIOHTTP1|6NIOSSL|10NIOHTTP2)"),
    ("ProtoJSON", r"\$s9ProtoJSON"),
    ("GRPCServer", r"\$s10GRPCServer"),
    ("VLLMClient", r"\$s10VLLMClient"),
    ("Gateway", r"\$s7Gateway"),
    ("Fleet", r"\$s5Fleet"),
    ("Swift standard library and the rest", r"\$s"),
]


def exclusive(path):
    """Each function's exclusive instructions in one callgrind output, by name."""
    out = subprocess.run(["callgrind_annotate", "--threshold=100", str(path)], capture_output=True, text=True,
                         check=True).stdout
    costs = collections.Counter()
    for line in out.splitlines():
        match = re.match(r"\s*([\d,]+) \([^)]*\)\s+(.*)$", line)
        if match and "PROGRAM TOTALS" not in match.group(2):
            costs[match.group(2)] += int(match.group(1).replace(",", ""))
    return costs


def call_counts(path, symbol):
    """How many times each function calls the functions whose names hold `symbol`, from the
    output's `calls=` lines (names are compressed: a number stands for a name after its first use)."""
    names = {}
    counts = collections.Counter()
    caller = callee = None
    for line in open(path):
        if line.startswith(("fn=", "cfn=")):
            match = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
            if match.group(2):
                names[match.group(1)] = match.group(2)
            name = names.get(match.group(1), match.group(1))
            if line.startswith("fn="):
                caller = name
            else:
                callee = name
        elif line.startswith("calls=") and callee and symbol in callee:
            counts[caller] += int(line.split("=", 1)[1].split()[0])
    return counts


def units_between(few, many):
    """The extra calls (or chunks) of `many` over `few`, from their names' request counts."""
    requests = [int(Path(p).name.rsplit(".", 1)[1]) for p in (few, many)]
    per_request = CHUNKS_PER_STREAM if ".stream" in Path(many).name else 1
    return (requests[1] - requests[0]) * per_request


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("few", type=Path, help="the output with fewer requests")
    parser.add_argument("many", type=Path, help="the output with more requests, same binary and mode")
    parser.add_argument("--top", type=int, default=40, help="functions to list")
    parser.add_argument("--callers", metavar="SYMBOL", help="who calls the functions whose names hold SYMBOL")
    args = parser.parse_args()
    units = units_between(args.few, args.many)
    if args.callers:
        few, many = call_counts(args.few, args.callers), call_counts(args.many, args.callers)
        rows = sorted(((many[name] - few[name]) / units, name) for name in set(few) | set(many))
        for per_unit, name in reversed(rows):
            if abs(per_unit) >= 0.01:
                print(f"{per_unit:8.2f}  {name}")
        print(f"{sum(per_unit for per_unit, _ in rows):8.2f}  calls per unit in all")
        return
    few, many = exclusive(args.few), exclusive(args.many)
    per_function = {name: (many[name] - few[name]) / units for name in set(few) | set(many)}
    print(f"{sum(per_function.values()):,.0f} instructions per unit ({units} units)\n")
    layers = collections.Counter()
    for name, cost in per_function.items():
        layer = next((label for label, pattern in LAYERS if re.search(pattern, name)), "other C code")
        layers[layer] += cost
    for layer, cost in layers.most_common():
        print(f"{cost:10,.0f}  {layer}")
    print()
    for name, cost in sorted(per_function.items(), key=lambda item: -abs(item[1]))[:args.top]:
        print(f"{cost:10,.0f}  {name}")


if __name__ == "__main__":
    sys.exit(main())
