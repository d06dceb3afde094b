"""Stop a process the suite started in its own session, with everything it forked, by its pid."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the process group `proc` leads (started with start_new_session=True)."""
    # Already gone (and reaped) is fine: there is nothing left to stop.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def stop_group(
    proc: subprocess.Popen[bytes], first: signal.Signals = signal.SIGTERM, grace: float = 20
) -> None:
    """`first` to the whole group, then SIGKILL to what is left of it after `grace` seconds."""
    signal_group(proc, first)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    # Children of the leader (task processes, pool workers) may outlive it: the group goes too.
    signal_group(proc, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
