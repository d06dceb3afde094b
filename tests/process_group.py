"""Stop processes the suite started in sessions of their own, with everything they forked, by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence


def signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the process group `proc` leads (started with start_new_session=True)."""
    # Already gone (and reaped) is fine: there is nothing left to stop.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def stop_group(
    proc: subprocess.Popen[bytes], first: signal.Signals = signal.SIGTERM, grace: float = 20
) -> None:
    """`first` to the whole group, then SIGKILL to what is left of it after `grace` seconds."""
    stop_groups([proc], first, grace)


def stop_groups(
    procs: Sequence[subprocess.Popen[bytes]], first: signal.Signals = signal.SIGTERM, grace: float = 20
) -> None:
    """`first` to every group at once, one shared grace period, then SIGKILL to what is left."""
    for proc in procs:
        signal_group(proc, first)
    deadline = time.monotonic() + grace
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    # Children of a leader (task processes, pool workers) may outlive it: the whole group goes.
    for proc in procs:
        signal_group(proc, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
