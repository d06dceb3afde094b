"""Every Redis call of the state store, on the XCom backend's per-process runtime (one client per process).

This is the one module of ``redis_xcom.state`` that touches the storage layer: ``backend._runtime()``
(settings and its ``RedisStore``), the store's public ``scan`` / ``index_members`` / ``unlink``, and,
for what ``RedisStore.put`` cannot do (hash fields, absolute expiries), its ``_write`` (MULTI/EXEC on
the key's node, then WAIT when ``wait_replicas`` asks), ``_retrying`` (cluster redirections) and
``_errors`` (redis-py errors translated into RedisXComError). Rewire those here when the runtime moves.

Writes are plain commands in one MULTI/EXEC (no Lua, so the least-privilege ACL needs no scripting):
``HSET``, then ``PEXPIREAT NX`` (a new hash) and ``PEXPIREAT GT`` (only ever raised), and the same for
the task's ``#maps`` set. ``EXPIRE`` options need Redis 7.0+ or Valkey.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from redis_xcom.codec import compression

SCAN_BATCH = 500


@dataclass(frozen=True)
class StateSettings:
    """The ``[redis_xcom]`` options the state store uses (the same as for XComs)."""

    key_prefix: str
    max_value_bytes: int
    compression_id: int
    compression_threshold: int


def _runtime() -> Any:
    from redis_xcom import backend

    return backend.runtime()


_cached: tuple[Any, StateSettings] | None = None


def settings() -> StateSettings:
    """This process's options, derived again only when the runtime's Settings change (a fork, a reset)."""
    global _cached
    s = _runtime().settings
    cached = _cached
    if cached is None or cached[0] is not s:
        derived = StateSettings(
            s.key_prefix, s.max_value_bytes, compression.IDS[s.compression], s.compression_threshold
        )
        _cached = cached = (s, derived)
    return cached[1]


def _store() -> Any:
    return _runtime().store


def _decoded(key: Any) -> str:
    return key.decode() if isinstance(key, bytes) else str(key)


def read(hash_key: str, field: str) -> bytes | None:
    """A field's bytes, or None when the field or its hash is gone."""
    store = _store()
    with store._errors("read state from", hash_key):
        data: bytes | None = store._retrying(lambda: store.client.hget(hash_key, field))
        return data


def write(hash_key: str, field: str, data: bytes, key_expiry_ms: int, maps_key: str | None) -> None:
    """Set a field, keep its hash alive until at least ``key_expiry_ms``, and name the hash in the
    task's ``#maps`` set: one MULTI/EXEC in the scope's slot."""
    commands: list[tuple[Any, ...]] = [
        ("HSET", hash_key, field, data),
        ("PEXPIREAT", hash_key, key_expiry_ms, "NX"),
        ("PEXPIREAT", hash_key, key_expiry_ms, "GT"),
    ]
    if maps_key is not None:
        commands += [
            ("SADD", maps_key, hash_key),
            ("PEXPIREAT", maps_key, key_expiry_ms, "NX"),
            ("PEXPIREAT", maps_key, key_expiry_ms, "GT"),
        ]
    store = _store()
    with store._errors("write state to", hash_key):
        store._write(hash_key, commands)


def remove_fields(hash_key: str, fields: Sequence[str]) -> int:
    """Delete fields of one hash (an emptied hash disappears); how many existed."""
    store = _store()
    with store._errors("delete state from", hash_key):
        return int(store._retrying(lambda: store.client.hdel(hash_key, *fields)))


def drop_hashes(hash_keys: Sequence[str], maps_key: str | None) -> int:
    """Delete whole hashes of one scope's slot, and their names from its ``#maps`` set; how many existed."""
    if not hash_keys:
        return 0
    commands: list[tuple[Any, ...]] = [("UNLINK", *hash_keys)]
    if maps_key is not None:
        commands.append(("SREM", maps_key, *hash_keys))
    store = _store()
    with store._errors("delete state", hash_keys[0] if len(hash_keys) == 1 else maps_key):
        replies = store._on_owner(hash_keys[0], lambda conn: _executed(conn, commands))
    return int(replies[0])


def _executed(conn: Any, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """commands in one MULTI/EXEC on conn; their replies (the first error raised)."""
    pipe = conn.pipeline(transaction=True)
    for command in commands:
        pipe.execute_command(*command)
    return list(pipe.execute())


def map_hashes(maps_key: str) -> list[str]:
    """Every hash a task's ``#maps`` set names (stale names of gone hashes included)."""
    return [member for batch in _store().index_members(maps_key) for member in batch]


def scan_keys(pattern: str) -> Iterator[list[str]]:
    """Batches of keys matching pattern (every primary of a cluster)."""
    yield from _store().scan(pattern)


def fields(hash_key: str) -> Iterator[tuple[str, bytes]]:
    """(field, bytes) of one hash, walked with HSCAN."""
    store = _store()
    with store._errors("read state from", hash_key):
        cursor = 0
        while True:
            step = store._retrying(lambda c=cursor: store.client.hscan(hash_key, cursor=c, count=SCAN_BATCH))
            cursor, found = step
            for name, data in found.items():
                yield _decoded(name), data
            if cursor == 0:
                return
