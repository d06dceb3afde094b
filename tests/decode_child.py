"""Decode a value in a child process under a memory cap and a timeout, so that a decode bound that
regresses fails the test (MemoryError, a kill, a timeout) instead of exhausting the machine.

The cap is address space (``RLIMIT_AS``) on top of what the child maps once its libraries are
imported: pyarrow and polars reserve hundreds of MB of address space they never touch, so a fixed
cap would measure their import, not the decode.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

# The child: import what decoding may need, cap the address space, decode, run `then`, report.
_CHILD = r"""
import importlib, json, resource, sys, time
for name in sys.argv[3].split(","):
    if name:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
from redis_xcom.codec import Codec
data = sys.stdin.buffer.read()
def vm_bytes():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize")
cap = vm_bytes() + int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
report = {"outcome": "ok", "type": "", "message": ""}
try:
    value = eval(sys.argv[2]).decode(data)
    then = sys.argv[4]
    if then:
        exec(then, {"value": value, "json": json})
except BaseException as exc:
    report = {"outcome": "error", "type": type(exc).__name__, "message": str(exc)[:2000]}
report["seconds"] = time.perf_counter() - started
report["rss_growth_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
print(json.dumps(report))
"""

ROOT = Path(__file__).resolve().parent.parent
# What a probe of a scientific value imports before the cap (polars alone maps about 1 GB).
SCIENCE = "numpy,pyarrow,pyarrow.compute,pandas,polars"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What happened in the child: outcome is ok, error, killed (a signal) or timeout."""

    outcome: str
    type: str = ""
    message: str = ""
    seconds: float = 0.0
    rss_growth_mb: float = 0.0

    @property
    def refused(self) -> bool:
        return self.outcome == "error" and self.type == "DecodeLimitError"


def decode_in_child(
    data: bytes,
    *,
    then: str = "",
    codec: str = "Codec()",
    cap_mb: int = 512,
    timeout: float = 60.0,
    preload: str = "",
) -> Outcome:
    """Decode data with `codec` (an expression) in a child capped at cap_mb of address space above
    its imports (preload: modules to import first, comma-separated; SCIENCE for numpy, Arrow,
    pandas and polars values), then run the statement `then` on `value`; a regression shows as an
    outcome other than the one the test expects, never as the machine running out of memory."""
    env = {
        **os.environ,
        # The system allocator returns what it frees and reserves no arenas: the cap measures use.
        "ARROW_DEFAULT_MEMORY_POOL": "system",
        "POLARS_MAX_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }
    try:
        run = subprocess.run(
            [sys.executable, "-c", _CHILD, str(cap_mb << 20), codec, preload, then],
            input=data,
            capture_output=True,
            timeout=timeout,
            cwd=ROOT,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return Outcome("timeout", message=f"no answer within {timeout} s")
    lines = run.stdout.decode(errors="replace").strip().splitlines()
    if run.returncode != 0 or not lines:
        tail = run.stderr.decode(errors="replace")[-1500:]
        return Outcome("killed", message=f"exit {run.returncode}: {tail}")
    return Outcome(**json.loads(lines[-1]))
