"""Peak memory of a server's process tree, read from /proc (Linux): what one request made it grow by.

The UI sandbox's workers are the server's children too, but they are the processes meant to bear a
value's cost (under their own cap) and are replaced when they breach it: `server_pids` leaves them out.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

# A sandbox worker's command line names its module (redis_xcom.ui.sandbox_worker.BOOT).
WORKER_MARK = b"redis_xcom.ui.sandbox_worker"


def tree(root: int) -> list[int]:
    """root and every process descending from it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            parent = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def is_sandbox_worker(pid: int) -> bool:
    try:
        return WORKER_MARK in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def server_pids(root: int) -> list[int]:
    return [pid for pid in tree(root) if not is_sandbox_worker(pid)]


def status_kib(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise KeyError(field_name)


@dataclass
class PeakGrowth:
    """Each server process's peak RSS (VmHWM) growth over a block, in MiB, summed."""

    root: int
    start: dict[int, int] = field(default_factory=dict)
    mib: float = 0.0

    def begin(self) -> None:
        """Reset each process's peak to its current RSS where the kernel allows it (clear_refs 5),
        so that the peak measured is this block's own; otherwise start from the peak so far."""
        self.start = {}
        for pid in server_pids(self.root):
            with contextlib.suppress(OSError):
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            with contextlib.suppress(OSError, KeyError):
                self.start[pid] = status_kib(pid, "VmHWM")

    def end(self) -> float:
        grown = 0
        for pid, before in self.start.items():
            with contextlib.suppress(OSError, KeyError):
                grown += max(0, status_kib(pid, "VmHWM") - before)
        self.mib = grown / 1024
        return self.mib


@contextlib.contextmanager
def peak_growth(root: int) -> Iterator[PeakGrowth]:
    """How much the peak RSS of root's tree (less the sandbox workers) grew inside the block."""
    growth = PeakGrowth(root)
    growth.begin()
    yield growth
    growth.end()
