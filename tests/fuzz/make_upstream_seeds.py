"""Writes the seed corpus for fuzz-upstream-response from the recorded vLLM responses: each
response as vLLM sent it on the wire (streams re-chunked one event per chunk, as vLLM writes
them), after the control byte that picks where the fuzz target cuts the input in two."""

import re
import sys
from pathlib import Path

recordings = Path(__file__).resolve().parents[1] / "fixtures" / "vllm-recordings"
out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent / "upstream-corpus")
out.mkdir(exist_ok=True)
for recording in sorted(recordings.glob("*.http")):
    text = recording.read_bytes()
    marker = text.find(b"### RESPONSE")
    if marker < 0:
        continue
    response = text[text.index(b"\n", marker) + 1:]
    head, _, body = response.partition(b"\r\n\r\n")
    if not body and b"\n\n" in response:
        head, _, body = response.partition(b"\n\n")
        head = head.replace(b"\n", b"\r\n")
    if not head.startswith(b"HTTP/1.1"):
        continue
    if re.search(rb"(?im)^transfer-encoding:\s*chunked", head):
        events = [e + b"\n\n" for e in body.split(b"\n\n") if e.strip()]
        body = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"
    (out / recording.stem).write_bytes(bytes([len(head) % 256]) + head + b"\r\n\r\n" + body)
print(f"wrote {len(list(out.iterdir()))} seeds to {out}")
