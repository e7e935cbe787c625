"""The README's Python example works as written, against the gateway and vllm-sim."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_stream_chat_example(gateway):
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "python" / "stream_chat.py"), gateway.address,
                             "Hi"], capture_output=True, text=True, timeout=60,
                            env={"PYTHONPATH": str(ROOT / "tests" / "python" / "generated")})
    assert result.returncode == 0, result.stderr
    assert "generated tokens]" in result.stdout and len(result.stdout.splitlines()[0]) > 0
