"""A UI sandbox worker: a process of its own that decodes and renders stored values for the API server.

Started by redis_xcom/ui/sandbox.py (``python -I -c BOOT <sys.path> <limits>``, with an environment
holding no secret); it sets its own limits before importing the codec, then answers one request
after another on its stdin/stdout (protocol.py) until the API server closes the pipe:

    RLIMIT_DATA   the memory it may allocate (ui_sandbox_memory_mb)
    RLIMIT_AS     its address space: that plus ADDRESS_SPACE_MARGIN for the libraries' code
    RLIMIT_CPU    re-armed before each value to ui_sandbox_cpu_seconds more than it has used; past
                  it the kernel stops the worker (SIGXCPU), and the API server replaces it
    RLIMIT_CORE   0: a worker stopped that way leaves no core file

The hard CPU limit covers a worker's whole life: once little is left, its reply says it retires.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
from typing import Any

from redis_xcom.ui import protocol

# The address space a worker may have beyond its data: shared libraries' code (pandas, pyarrow,
# polars map a few hundred MiB of it) and reservations that are never written.
ADDRESS_SPACE_MARGIN = 1 << 30
# Values a worker may serve on its CPU budget: its hard limit is this many times the per-value one.
LIFETIME_VALUES = 50

# sandbox.py starts the worker with this program; the module's path gives ps and tests its name.
BOOT = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from redis_xcom.ui.sandbox_worker import main; main(json.loads(sys.argv[2]))"
)


def main(limits: dict[str, Any]) -> None:
    """Serve requests until the API server goes away, or the CPU budget is spent."""
    memory_bytes, cpu_seconds = int(limits["memory_bytes"]), int(limits["cpu_seconds"])
    hard_cpu = cpu_seconds * LIFETIME_VALUES
    set_limits(memory_bytes, hard_cpu)
    requests, replies = _protocol_pipes()
    from redis_xcom.ui.render import render  # after the limits: the codec and its libraries count

    while True:
        try:
            head = protocol.read_exactly(requests, protocol.REQUEST.size, None)
            header_len, data_len = protocol.REQUEST.unpack(head)
            header = json.loads(protocol.read_exactly(requests, header_len, None))
            data = protocol.read_exactly(requests, data_len, None)
        except protocol.Closed:
            return  # the API server closed the pipe (it stopped, or retired this worker)
        arm_cpu(cpu_seconds)
        status, body = render(
            header["op"],
            data,
            int(header["max_decoded_bytes"]),
            int(header["preview_bytes"]),
            int(header["max_output_bytes"]),
            memory_bytes >> 20,
        )
        del data
        retiring = cpu_left() < cpu_seconds + 1  # the next value could not have its full budget
        head = protocol.REPLY.pack(status | (protocol.RETIRING if retiring else 0), len(body))
        try:
            protocol.write_all(replies, head, None)
            protocol.write_all(replies, body, None)  # not joined to the head: no copy of a large body
        except protocol.Closed:
            return
        if retiring:
            return


def set_limits(memory_bytes: int, hard_cpu: int) -> None:
    """The worker's limits, each never above one it already has (an unprivileged process cannot
    raise a hard limit, and a lower one set by the operator stays)."""
    _lower(resource.RLIMIT_CORE, 0)
    _lower(resource.RLIMIT_DATA, memory_bytes)
    _lower(resource.RLIMIT_AS, memory_bytes + ADDRESS_SPACE_MARGIN)
    _lower(resource.RLIMIT_CPU, hard_cpu)


def arm_cpu(seconds: int) -> None:
    """Let the next value use at most `seconds` more CPU time than the worker has used so far."""
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = math.ceil(cpu_used()) + seconds
    resource.setrlimit(
        resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard)
    )


def cpu_left() -> float:
    """CPU seconds left before the hard limit stops the worker for good."""
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    return math.inf if hard == resource.RLIM_INFINITY else hard - cpu_used()


def cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _lower(limit: int, value: int) -> None:
    _soft, hard = resource.getrlimit(limit)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(limit, (value, value))


def _protocol_pipes() -> tuple[int, int]:
    """stdin and stdout moved to private descriptors, and /dev/null put in their place: a library
    printing to stdout cannot corrupt the replies."""
    requests, replies = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the process's lifetime
    return requests, replies
