"""The frames between the API server and a UI sandbox worker: plain bytes both ways, never pickle.

    request   >IQ (header length, data length), the header (JSON: the operation and plain settings),
              then the stored value's bytes as Redis holds them
    reply     >BQ (status, body length), then the body: the rendered bytes (OK), or JSON of strings
              saying why not (FAILED, TOO_COSTLY)

The parent reads a reply's length before its body, so it never reads more than it allows.
Standard library only: the worker imports this before it sets its limits.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import Any

REQUEST = struct.Struct(">IQ")
REPLY = struct.Struct(">BQ")

# Operations: a preview (JSON of preview.Preview.as_json()) or the whole value as JSON text.
PREVIEW, JSON = "preview", "json"

# Reply statuses; RETIRING is or-ed in when the worker exits after this reply (its CPU budget is spent).
OK, FAILED, TOO_COSTLY = 0, 1, 2
RETIRING = 0x80
STATUS_MASK = 0x7F

# Where a FAILED value stopped: its bytes did not decode, its preview or its JSON could not be made.
DECODE, RENDER = "decode", "render"
# Messages a worker sends are cut here: they are shown on the page, and the parent reads them.
MESSAGE_CHARS = 2000
# A preview's reply may be this many times ui_preview_bytes (and 64 KiB), at most: it is parsed by
# the API server, so its size must not follow the value's (a table of a million columns).
PREVIEW_EXPANSION = 8
BOUNDS = (
    f"[redis_xcom] ui_sandbox_max_output_bytes; for a preview, {PREVIEW_EXPANSION} times ui_preview_bytes"
)


class Expired(Exception):
    """The deadline passed before the other side read or wrote everything."""


class Closed(Exception):
    """The other side closed its end (the worker died, or the API server went away)."""


def encode_request(op: str, settings: dict[str, int], data: bytes) -> tuple[bytes, bytes]:
    """The frame's head (lengths and header) and its data, sent one after the other (never joined)."""
    header = json.dumps({"op": op, **settings}).encode()
    return REQUEST.pack(len(header), len(data)) + header, data


def why(stage: str, error: str, message: str) -> bytes:
    """A FAILED reply's body: where it stopped and the error, as plain strings."""
    text = {"stage": stage, "error": error[:200], "message": message[:MESSAGE_CHARS]}
    return json.dumps(text).encode()


def reason(text: str) -> bytes:
    """A TOO_COSTLY reply's body: which limit the value breached."""
    return json.dumps({"reason": text[:MESSAGE_CHARS]}).encode()


def strings(body: bytes, *names: str) -> dict[str, str]:
    """The named string fields of a FAILED or TOO_COSTLY body; ValueError for anything else."""
    parsed: Any = json.loads(body)
    if not isinstance(parsed, dict) or not all(isinstance(parsed.get(n), str) for n in names):
        raise ValueError("malformed reply from a UI sandbox worker")
    return {name: parsed[name][:MESSAGE_CHARS] for name in names}


def write_all(fd: int, data: bytes | memoryview, deadline: float | None) -> None:
    """Write every byte to a pipe, waiting at most until deadline (time.monotonic()); Closed if the
    reader is gone. A non-blocking fd is waited on with poll, so a stuck reader cannot hold us."""
    view = memoryview(data)
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    while view:
        _wait(poller, deadline)
        try:
            written = os.write(fd, view[: 1 << 20])
        except BlockingIOError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            raise Closed from None
        view = view[written:]


def read_exactly(fd: int, size: int, deadline: float | None) -> bytes:
    """Read exactly size bytes, waiting at most until deadline; Closed at end of file."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    got = 0
    while got < size:
        _wait(poller, deadline)
        try:
            count = os.readv(fd, [view[got:]])
        except BlockingIOError:
            continue
        if count == 0:
            raise Closed
        got += count
    return bytes(buffer)


def _wait(poller: select.poll, deadline: float | None) -> None:
    """Until the fd is ready (or has hung up: the read or write that follows says so)."""
    while True:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        if poller.poll(None if timeout is None else timeout * 1000):
            return
        if deadline is not None and time.monotonic() >= deadline:
            raise Expired
