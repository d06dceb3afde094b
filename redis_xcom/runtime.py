"""This process's settings, codec, value store and server inspection, built on first use.

The one per-process runtime: the backend (every push and pull), the UI's value reader and the ops
commands all take theirs from here. A forked child (a task process) forgets its parent's on
os.register_at_fork and builds its own on first use, with its own connection pool; no call pays for
os.getpid() (a system call, slow in sandboxes).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from redis_xcom.codec import Codec
from redis_xcom.config import Settings, get_settings, reset_settings
from redis_xcom.storage import client
from redis_xcom.storage.server_info import ServerInfo
from redis_xcom.storage.store import RedisStore


@dataclass
class Runtime:
    settings: Settings
    codec: Codec
    store: RedisStore
    info: ServerInfo
    # Checked after the first successful push, so a down Redis does not cost its timeouts twice.
    eviction_checked: bool = False


_lock = threading.Lock()
_current: Runtime | None = None


def _build(settings: Settings) -> Runtime:
    # One client (one connection pool) per process.
    store = RedisStore(
        client.build_connection(settings),
        chunk_bytes=settings.chunk_bytes,
        wait_replicas=settings.wait_replicas,
        wait_timeout_ms=settings.wait_timeout_ms,
        scripting=settings.lua_scripts,
    )
    codec = Codec(
        settings.compression, settings.compression_threshold, max_decoded_bytes=settings.max_value_bytes
    )
    return Runtime(settings, codec, store, ServerInfo(store))


def get_runtime() -> Runtime:
    """This process's runtime: one global read on every push and pull once built."""
    runtime = _current
    if runtime is not None:
        return runtime
    return _built()


def _built() -> Runtime:
    global _current
    with _lock:
        if _current is None:
            _current = _build(get_settings())
        return _current


def reset_runtime() -> None:
    """Forget this process's settings and connections (tests, or after changing the config)."""
    global _current
    with _lock:
        _current = None
        reset_settings()


def _forget_in_child() -> None:
    """A forked child builds its own: its parent's pool and lock are the parent's."""
    global _current, _lock
    _current = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)
