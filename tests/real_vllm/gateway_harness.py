"""What every real-vLLM test module needs from the Python suite: its generated stubs and its
helpers on the path, and its conftest (the gateway and simulator processes) as `servers`. Import
it before the stubs."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "python"))
sys.path.insert(0, str(ROOT / "tests" / "python" / "generated"))
_spec = importlib.util.spec_from_file_location("gateway_servers", ROOT / "tests" / "python" / "conftest.py")
servers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(servers)
