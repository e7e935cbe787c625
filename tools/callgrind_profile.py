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

`--footprint` prints how much code a unit runs rather than how many instructions: the distinct
instructions the extra units executed, the 64-byte lines and 4 KiB pages they lie on, by object
(the gateway, nghttp2, libswiftCore, libc) and for the gateway's functions with the most lines.
A unary call ran 15,768 distinct instructions of the gateway's executable, each about 1.5
times, over 165 pages: its time goes as much to fetching code (L1 instruction misses, 1,508 a
call against nghttpx's 681 under `--cache-sim=yes`) as to running it. Needs outputs made with
`--dump-instr=yes`, as bench-callgrind makes the gateway's.
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


def compressed_name(line, names):
    """The name a `fn=`, `cfn=`, `ob=` or `cob=` line stands for: names are compressed, a number
    standing for a name after the line that first gives both."""
    match = re.match(r"\w+=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
    if match.group(2):
        names[match.group(1)] = match.group(2)
    return names.get(match.group(1), match.group(1))


def call_counts(path, symbol):
    """How many times each function calls the functions whose names hold `symbol`, from the
    output's `calls=` lines."""
    names = {}
    counts = collections.Counter()
    caller = callee = None
    for line in open(path):
        if line.startswith(("fn=", "cfn=")):
            name = compressed_name(line, names)
            if line.startswith("fn="):
                caller = name
            else:
                callee = name
        elif line.startswith("calls=") and callee and symbol in callee:
            counts[caller] += int(line.split("=", 1)[1].split()[0])
    return counts


def instruction_costs(path):
    """Each executed instruction's exclusive cost in one output made with --dump-instr=yes, by
    (object, address), and the function holding it. Positions are compressed: "+N", "-N" and
    "*" are relative to the line before; a `calls=` line's next line is the call's inclusive
    cost, whose address counts but whose cost is the callee's."""
    names = {"ob": {}, "fn": {}}
    costs, functions = collections.Counter(), {}
    obj = function = None
    address, after_call = 0, False
    for line in open(path):
        kind = line.split("=", 1)[0] if "=" in line.split(" ", 1)[0] else None
        if kind in ("ob", "cob", "fn", "cfn"):
            name = compressed_name(line, names["ob" if kind.endswith("ob") else "fn"])
            if kind == "ob":
                obj = name
            elif kind == "fn":
                function = name
            continue
        if kind == "calls":
            after_call = True
            continue
        if not line[:1] or line[0] not in "+-*0":
            continue
        fields = line.split()
        position = fields[0]
        if position.startswith("0x"):
            address = int(position, 16)
        elif position[0] in "+-":
            offset = int(position[1:], 16) if position[1:].startswith("0x") else int(position[1:])
            address += offset if position[0] == "+" else -offset
        if after_call:
            after_call = False
            continue
        if len(fields) >= 3:
            costs[(obj, address)] += int(fields[2])
            functions[(obj, address)] = function
    return costs, functions


def footprint(few_path, many_path, units, top):
    few, _ = instruction_costs(few_path)
    many, functions = instruction_costs(many_path)
    ran = {key for key, cost in many.items() if cost > few[key]}
    by_object = collections.defaultdict(set)
    for obj, address in ran:
        by_object[obj].add(address)
    print(f"code the extra {units} units ran, by object:")
    for obj, addresses in sorted(by_object.items(), key=lambda item: -len(item[1])):
        lines, pages = {a // 64 for a in addresses}, {a // 4096 for a in addresses}
        print(f"{len(addresses):8,} instructions {len(lines):6,} lines ({len(lines) * 64 // 1024} KiB) "
              f"{len(pages):5,} pages  {obj}")
    gateway = max(by_object, key=lambda obj: len(by_object[obj]))
    per_function = collections.defaultdict(set)
    for obj, address in ran:
        if obj == gateway:
            per_function[functions[(obj, address)]].add(address)
    lines_of = {name: len({a // 64 for a in addresses}) for name, addresses in per_function.items()}
    print(f"\nfunctions of {gateway} on the most lines:")
    for name in sorted(per_function, key=lambda name: -lines_of[name])[:top]:
        print(f"{lines_of[name]:6} lines {len(per_function[name]):6} instructions  {name}")


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
    parser.add_argument("--footprint", action="store_true", help="the code a unit runs: distinct instructions, "
                        "lines and pages")
    args = parser.parse_args()
    units = units_between(args.few, args.many)
    if args.footprint:
        return footprint(args.few, args.many, units, args.top)
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
