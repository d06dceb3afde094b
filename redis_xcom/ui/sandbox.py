"""The UI's sandbox: stored values are decoded and rendered in worker processes, never in the API server.

A small pool of warm workers (sandbox_worker.py) per API server process, each with a hard memory
cap and a CPU-time limit of its own, set by the kernel. Per value the API server sends the stored
bytes and plain settings, waits at most ui_sandbox_timeout_seconds (then kills the worker) and
reads back at most ui_sandbox_max_output_bytes of rendered bytes, or the reason why not; a worker
that dies or breaches a limit is replaced at once. Nothing crosses as pickle, either way.

A value that breaches a limit comes back as TooCostly: the API server neither grows nor fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO

from redis_xcom.config import Settings
from redis_xcom.ui import protocol
from redis_xcom.ui.sandbox_worker import BOOT

log = logging.getLogger(__name__)

# The only environment a worker gets: no secret of the API server's (its database, JWT secret,
# Redis password) is there, and the libraries that would start a thread per core start one.
WORKER_ENVIRONMENT = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_MAX_THREADS": "1",
    "POLARS_MAX_THREADS": "1",
    "RAYON_NUM_THREADS": "1",
    # pyarrow allocates through malloc, so the memory cap sees and refuses its allocations plainly.
    "ARROW_DEFAULT_MEMORY_POOL": "system",
    "MALLOC_ARENA_MAX": "2",
}
# A FAILED or TOO_COSTLY reply is a few strings: never read more than this of one.
_REASON_BYTES = 64 * 1024

# The pipes' buffer: Linux's default pipe-max-size, what an unprivileged process may ask for.
_PIPE_BYTES = 1 << 20
# How long a killed or retiring worker may take to be reaped.
_REAP_SECONDS = 5.0


@dataclass(frozen=True)
class Limits:
    """What one worker may spend on one value, and how many workers there are."""

    memory_bytes: int
    cpu_seconds: int
    timeout_seconds: float
    max_output_bytes: int
    workers: int

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            memory_bytes=settings.ui_sandbox_memory_mb << 20,
            cpu_seconds=settings.ui_sandbox_cpu_seconds,
            timeout_seconds=settings.ui_sandbox_timeout_seconds,
            max_output_bytes=settings.ui_sandbox_max_output_bytes,
            workers=settings.ui_sandbox_workers,
        )


@dataclass(frozen=True)
class Rendered:
    """The worker's rendering: a preview's JSON, or the whole value as JSON text."""

    body: bytes


@dataclass(frozen=True)
class Failed:
    """The value could not be decoded (stage "decode") or rendered ("render"); error names the
    exception's class, as plain text."""

    stage: str
    error: str
    message: str


@dataclass(frozen=True)
class TooCostly:
    """Rendering the value breached a limit: reason says which."""

    reason: str


@dataclass(frozen=True)
class Busy:
    """Every worker stayed busy with other values for timeout_seconds: nothing was tried."""

    message: str


Outcome = Rendered | Failed | TooCostly | Busy


class _NotDelivered(Exception):
    """The worker was gone before it took the request: the value is not to blame, try another."""


class _Worker:
    """One worker process and the two pipes the API server holds to it."""

    def __init__(self, limits: Limits) -> None:
        settings = {"memory_bytes": limits.memory_bytes, "cpu_seconds": limits.cpu_seconds}
        paths = [path for path in sys.path if path]  # no '' (the directory a worker happens to be in)
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-W", "ignore", "-c", BOOT, json.dumps(paths), json.dumps(settings)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # a worker that cannot start says why in the API server's log
            env=WORKER_ENVIRONMENT,
            cwd="/",
            bufsize=0,
            close_fds=True,  # no socket, database connection or file of the API server's
        )
        self.stdin: IO[bytes] = self.proc.stdin  # type: ignore[assignment]
        self.stdout: IO[bytes] = self.proc.stdout  # type: ignore[assignment]
        for pipe in (self.stdin, self.stdout):
            os.set_blocking(pipe.fileno(), False)
            # Fewer wake-ups per value: a 1 MB value crosses in one write instead of sixteen.
            with contextlib.suppress(OSError, AttributeError):  # above pipe-max-size; not Linux
                fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """Kill and reap (a no-op for one that already exited); closing stdin alone would let a
        busy worker go on until its CPU limit."""
        if self.proc.poll() is None:
            self.proc.kill()
        for pipe in (self.stdin, self.stdout):
            pipe.close()
        try:
            self.proc.wait(_REAP_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("UI sandbox worker %s did not exit after SIGKILL", self.pid)

    def exchange(
        self, head: bytes, data: bytes, bound: int, limits: Limits, deadline: float
    ) -> tuple[int, bytes]:
        """Send one request and read its reply (status byte, body); _NotDelivered if the worker was
        already gone, TooCostly when it dies, overruns the deadline or answers more than bound bytes."""
        try:
            protocol.write_all(self.stdin.fileno(), head, deadline)
            protocol.write_all(self.stdin.fileno(), data, deadline)
        except protocol.Closed:
            raise _NotDelivered from None
        except protocol.Expired:
            raise TooCostlyError(_slow(limits)) from None
        try:
            status, length = protocol.REPLY.unpack(
                protocol.read_exactly(self.stdout.fileno(), protocol.REPLY.size, deadline)
            )
            if length > (bound if status & protocol.STATUS_MASK == protocol.OK else _REASON_BYTES):
                raise TooCostlyError(
                    f"its rendering is {length} bytes, above the {bound} allowed ({protocol.BOUNDS})"
                )
            return status, protocol.read_exactly(self.stdout.fileno(), length, deadline)
        except protocol.Expired:
            raise TooCostlyError(_slow(limits)) from None
        except protocol.Closed:
            raise self._death(limits) from None

    def _death(self, limits: Limits) -> Exception:
        """Why the worker ended while on the value: a limit it breached, or a failure of its own."""
        try:
            code = self.proc.wait(_REAP_SECONDS)
        except subprocess.TimeoutExpired:
            code = None
        if code is not None and code >= 0:
            # An exit, not a signal: the worker itself failed (it could not start, say), not the value.
            return SandboxError(
                f"the UI sandbox worker exited with status {code} (the API server's log says why)"
            )
        name = _signal_name(-code) if code is not None else "unknown"
        if code == -signal.SIGXCPU:
            return TooCostlyError(
                "rendering it took more CPU time than [redis_xcom] ui_sandbox_cpu_seconds = "
                f"{limits.cpu_seconds}"
            )
        return TooCostlyError(
            f"the worker rendering it was stopped ({name}), as when an allocation fails at "
            f"[redis_xcom] ui_sandbox_memory_mb = {limits.memory_bytes >> 20}"
        )


class TooCostlyError(Exception):
    """Raised inside this module when a worker breaches a limit; render() returns it as TooCostly."""


class SandboxError(Exception):
    """A worker failed for a reason of its own (it could not start); render() returns it as Failed."""


class Sandbox:
    """The pool of workers of this API server process; safe to share between request threads."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._ready = threading.Condition()
        self._closed = False
        # Started now, so that the first values find them warm. A slot holds None while no worker
        # could be started there (the next value taking it tries again).
        self._idle: list[_Worker | None] = [_start(limits) for _ in range(limits.workers)]

    def render(self, op: str, data: bytes, *, max_decoded_bytes: int, preview_bytes: int) -> Outcome:
        """One stored value decoded and rendered by a worker (op: protocol.PREVIEW or protocol.JSON)."""
        bound = self.limits.max_output_bytes
        if op == protocol.PREVIEW:
            # A preview is parsed here: a few times its text's budget (escapes, a table's cells and
            # column names) is all it may take, whatever the value.
            bound = min(bound, protocol.PREVIEW_EXPANSION * preview_bytes + _REASON_BYTES)
        settings = {
            "max_decoded_bytes": max_decoded_bytes,
            "preview_bytes": preview_bytes,
            "max_output_bytes": bound,
        }
        head, data = protocol.encode_request(op, settings, data)
        for _ in range(2):  # a second worker only when the first was already gone
            try:
                worker = self._acquire(time.monotonic() + self.limits.timeout_seconds)
            except SandboxError as exc:
                return Failed("sandbox", "SandboxError", str(exc))
            if worker is None:
                return Busy(
                    f"every UI sandbox worker stayed busy for {self.limits.timeout_seconds:g} s "
                    "([redis_xcom] ui_sandbox_workers = "
                    f"{self.limits.workers}, ui_sandbox_timeout_seconds): try again"
                )
            keep = False
            try:
                status, body = worker.exchange(
                    head, data, bound, self.limits, time.monotonic() + self.limits.timeout_seconds
                )
                outcome = _outcome(status & protocol.STATUS_MASK, body)
                # One that breached a limit (a MemoryError it survived) may keep its peak: replaced too.
                keep = not isinstance(outcome, TooCostly) and not status & protocol.RETIRING
                return outcome
            except _NotDelivered:
                continue
            except TooCostlyError as exc:
                log.warning(
                    "UI sandbox worker %s stopped: a value was too costly to display: %s", worker.pid, exc
                )
                return TooCostly(str(exc))
            except (SandboxError, ValueError, OSError) as exc:  # a malformed reply; a pipe that failed
                log.warning("UI sandbox worker %s failed: %s", worker.pid, exc)
                return Failed("sandbox", type(exc).__name__, str(exc))
            finally:
                self._release(worker, keep)
        return Failed("sandbox", "SandboxError", "the UI sandbox workers keep dying before taking a value")

    def close(self) -> None:
        """Stop every idle worker; busy ones are stopped as their values finish."""
        with self._ready:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            if worker is not None:
                worker.stop()

    def pids(self) -> list[int]:
        """The idle workers' process ids (tests)."""
        with self._ready:
            return [worker.pid for worker in self._idle if worker is not None]

    def _acquire(self, deadline: float) -> _Worker | None:
        """An idle worker (the most recently used: its libraries are imported), or None at deadline;
        SandboxError when its slot has no worker and none can be started."""
        with self._ready:
            while not self._idle:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    return None
                self._ready.wait(remaining)
            worker = self._idle.pop()
        if worker is None or not worker.alive():  # it died while idle (killed from outside): a fresh one
            if worker is not None:
                worker.stop()
            worker = _start(self.limits)
            if worker is None:
                self._give_back(None)
                raise SandboxError("no UI sandbox worker could be started (the API server's log says why)")
        return worker

    def _release(self, worker: _Worker, keep: bool) -> None:
        """Back to the idle workers; one that failed, breached a limit or retires is replaced."""
        if keep:
            self._give_back(worker)
            return
        worker.stop()
        self._give_back(_start(self.limits))

    def _give_back(self, worker: _Worker | None) -> None:
        with self._ready:
            if not self._closed:
                self._idle.append(worker)
                self._ready.notify()
                return
        if worker is not None:
            worker.stop()


def _start(limits: Limits) -> _Worker | None:
    """A new worker, or None when the system refuses one (no process or descriptor left)."""
    try:
        return _Worker(limits)
    except OSError as exc:
        log.warning("A UI sandbox worker could not be started: %s", exc)
        return None


def _outcome(status: int, body: bytes) -> Outcome:
    if status == protocol.OK:
        return Rendered(body)
    if status == protocol.FAILED:
        fields = protocol.strings(body, "stage", "error", "message")
        return Failed(fields["stage"], fields["error"], fields["message"])
    if status == protocol.TOO_COSTLY:
        return TooCostly(protocol.strings(body, "reason")["reason"])
    raise ValueError(f"unknown status {status} from a UI sandbox worker")


def _slow(limits: Limits) -> str:
    return (
        f"rendering it took longer than [redis_xcom] ui_sandbox_timeout_seconds = {limits.timeout_seconds:g}"
    )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
