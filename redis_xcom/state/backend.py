"""Airflow glue: RedisStateStoreBackend, one class for both state store settings (Airflow 3.3+, AIP-103).

* ``[state_store] backend`` (API server): get / set / delete / clear hold what the metastore's rows
  would hold, in ``r:`` fields; the ``task_state_store`` / ``asset_state_store`` tables stay empty.
* ``[workers] state_store_backend`` (workers): the ``serialize_*_to_ref`` hooks write the value to a
  ``v:`` field and return its reference, which is all the DB row holds; delete and clear (which the
  workers call after removing the row) remove it.

delete and clear remove both fields of a key, so the one class is right in either role and in both.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk.state import BaseStoreBackend

from redis_xcom import metrics
from redis_xcom.errors import (
    StateValueMissingError,
    UntrustedReferenceError,
    ValueTooLargeError,
)
from redis_xcom.state import keys, record, retention, storage
from redis_xcom.state.keys import ASSET, TASK, StateScope

if TYPE_CHECKING:
    from pydantic import JsonValue


class RedisStateStoreBackend(BaseStoreBackend):
    """Task and asset state in Redis or Valkey, under ``[redis_xcom] key_prefix`` (docs/state-store.md).

    ``session`` is accepted everywhere and ignored: nothing here touches the metadata DB.
    """

    # -- server side: what the DB rows would hold -------------------------------------------------

    def get(self, scope: Any, key: str, *, session: Any = None) -> str | None:
        return _get(keys.scope_of(scope), key, keys.ROW)

    def set(
        self,
        scope: Any,
        key: str,
        value: str,
        *,
        expires_at: datetime | None = None,
        session: Any = None,
    ) -> None:
        state = keys.scope_of(scope)
        if state.kind == ASSET:
            expires_at = None  # as the metastore: asset state never expires
        _set(state, key, keys.ROW, value, retention.expires_ms(expires_at))

    def delete(self, scope: Any, key: str, *, session: Any = None) -> None:
        _delete(keys.scope_of(scope), key)

    def clear(self, scope: Any, *, all_map_indices: bool = False, session: Any = None) -> None:
        _clear(keys.scope_of(scope), all_map_indices=all_map_indices)

    # redis-py's calls block: each runs in a worker thread, off the caller's event loop.
    async def aget(self, scope: Any, key: str, *, session: Any = None) -> str | None:
        return await asyncio.to_thread(self.get, scope, key)

    async def aset(
        self,
        scope: Any,
        key: str,
        value: str,
        *,
        expires_at: datetime | None = None,
        session: Any = None,
    ) -> None:
        await asyncio.to_thread(self.set, scope, key, value, expires_at=expires_at)

    async def adelete(self, scope: Any, key: str, *, session: Any = None) -> None:
        await asyncio.to_thread(self.delete, scope, key)

    async def aclear(self, scope: Any, *, all_map_indices: bool = False, session: Any = None) -> None:
        await asyncio.to_thread(self.clear, scope, all_map_indices=all_map_indices)

    def cleanup(self) -> None:
        """Drop fields past their expiry whose hash lives on for a longer-lived sibling (Redis
        expires whole hashes by itself; a field past its expiry already reads as missing)."""
        from redis_xcom.state.maintenance import prune_expired

        prune_expired()

    # -- worker side: the value in Redis, its reference in the DB row ------------------------------

    def serialize_task_state_store_to_ref(self, *, value: JsonValue, key: str, scope: Any) -> str:
        return _store_value(keys.scope_of(scope), key, value)

    def deserialize_task_state_store_from_ref(self, stored: str) -> JsonValue:
        return _load_value(stored, TASK)

    def serialize_asset_state_store_to_ref(self, *, value: JsonValue, key: str, scope: Any) -> str:
        return _store_value(keys.scope_of(scope), key, value)

    def deserialize_asset_state_store_from_ref(self, stored: str) -> JsonValue:
        return _load_value(stored, ASSET)


def _register_with_core() -> None:
    """The API server checks ``issubclass`` against airflow-core's own copy of BaseStoreBackend, a
    distinct class from the task SDK's (``airflow._shared`` vs ``airflow.sdk._shared``): be both."""
    try:
        from airflow._shared.state import BaseStoreBackend as CoreBase
    except ImportError:  # a worker with the task SDK only
        return
    if CoreBase is not BaseStoreBackend:
        CoreBase.register(RedisStateStoreBackend)


_register_with_core()


def _get(state: StateScope, key: str, role: str) -> str | None:
    started = time.perf_counter()
    cfg = storage.settings()
    hash_key = keys.hash_key(cfg.key_prefix, state)
    data = storage.read(hash_key, role + key)
    found = None
    if data is not None:
        found = record.decode(data, cfg.max_value_bytes, f"{state.describe()}, key {key!r} ({hash_key})")
    metrics.state_call(metrics.STATE_GETS, started)
    if found is None or found.expired(retention.now_ms()):
        return None
    return found.text


def _set(state: StateScope, key: str, role: str, text: str, expires_ms: int) -> None:
    started = time.perf_counter()
    cfg = storage.settings()
    size = len(text.encode())
    if size > cfg.max_value_bytes:
        raise ValueTooLargeError(
            f"{state.describe()}, key {key!r}: the value is {size} bytes of JSON text, above "
            f"[redis_xcom] max_value_bytes = {cfg.max_value_bytes}; nothing was written. Store a smaller "
            "value (for example a path to the data) or raise max_value_bytes."
        )
    hash_key = keys.hash_key(cfg.key_prefix, state)
    if expires_ms != record.NEVER and expires_ms <= retention.now_ms():
        # Already past its expiry: what a write then an expiry would leave, without touching the hash's TTL.
        storage.remove_fields(hash_key, [role + key])
        return
    data = record.encode(text, expires_ms, retention.now_ms(), cfg.compression_id, cfg.compression_threshold)
    storage.write(
        hash_key, role + key, data, retention.key_expiry_ms(expires_ms), keys.maps_key(cfg.key_prefix, state)
    )
    metrics.state_call(metrics.STATE_SETS, started, len(data))


def _delete(state: StateScope, key: str) -> None:
    started = time.perf_counter()
    cfg = storage.settings()
    storage.remove_fields(keys.hash_key(cfg.key_prefix, state), [keys.row_field(key), keys.value_field(key)])
    metrics.state_call(metrics.STATE_DELETES, started)


def _clear(state: StateScope, *, all_map_indices: bool) -> int:
    """Delete the scope's hash (or, for a task with all_map_indices, every map index's); how many existed."""
    started = time.perf_counter()
    prefix = storage.settings().key_prefix
    hash_key = keys.hash_key(prefix, state)
    maps_key = keys.maps_key(prefix, state)
    hashes = [hash_key]
    if all_map_indices and maps_key is not None:
        # Only names the canonical form of this task's own hashes: a set member is never trusted blindly.
        hashes += [
            h
            for h in storage.map_hashes(maps_key)
            if h != hash_key and _same_task(keys.parse_hash_key(h, prefix), state)
        ]
    deleted = storage.drop_hashes(hashes, maps_key)
    metrics.state_call(metrics.STATE_DELETES, started)
    return deleted


def _same_task(found: StateScope | None, state: StateScope) -> bool:
    return found is not None and found.kind == TASK and replace(found, map_index=state.map_index) == state


def _store_value(state: StateScope, key: str, value: Any) -> str:
    """Write a worker-side value and return its reference; no expiry of its own, so it outlives its row."""
    _set(state, key, keys.VALUE, json.dumps(value), record.NEVER)
    return keys.to_reference(storage.settings().key_prefix, state, key)


def _load_value(stored: str, kind: str) -> Any:
    cfg = storage.settings()
    parsed = keys.parse_reference(stored, cfg.key_prefix)
    what = "task" if kind == TASK else "asset"
    if parsed is None or parsed[0].kind != kind:
        raise UntrustedReferenceError(
            f"A {what} state store row holds the reference {stored!r}, which names no redis-xcom {what} "
            f"state value under [redis_xcom] key_prefix {cfg.key_prefix!r}. The row was not written by "
            "redis-xcom for this key (it may have been edited through the REST API or the UI): nothing is "
            "read for it. Delete or set the key again."
        )
    state, key = parsed
    _check_running_scope(stored, state, key)
    text = _get(state, key, keys.VALUE)
    if text is None:
        raise StateValueMissingError(
            f"{state.describe()}, key {key!r}: its DB row refers to {stored!r}, which Redis no longer "
            "holds (deleted, evicted, or the server lost its data). Set the key again; check that Redis "
            "runs with maxmemory-policy noeviction and persistence (redis-xcom doctor)."
        )
    return json.loads(text)


def _check_running_scope(stored: str, state: StateScope, key: str) -> None:
    """A reference read inside a task must name that task's own state, or an asset of its inlets or
    outlets: Airflow hands the hooks only the reference, so the running task is the row's scope."""
    context = _running_context()
    if context is None:
        return  # not inside a task (a trigger, a script): the reference's own form was checked
    if state.kind == TASK:
        accessor = context.get("task_state_store")
        own = getattr(accessor, "_scope", None)
        if own is None or keys.scope_of(own) == state:
            return
        why = f"it names {state.describe()}, not the running task's ({keys.scope_of(own).describe()})"
    else:
        accessors = context.get("asset_state_store")
        allowed = {("name", n) for n in getattr(accessors, "_by_name", {}) or {}} | {
            ("uri", u) for u in getattr(accessors, "_by_uri", {}) or {}
        }
        if accessors is None or (state.asset_kind, state.asset) in allowed:
            return
        why = f"it names {state.describe()}, which is none of the running task's inlets or outlets"
    raise UntrustedReferenceError(
        f"A state store row for key {key!r} holds the reference {stored!r}: {why}. The row was not "
        "written by redis-xcom for this key (it may have been edited through the REST API or the UI): "
        "nothing is read for it. Delete or set the key again."
    )


def _running_context() -> dict[str, Any] | None:
    try:
        from airflow.sdk import get_current_context

        return get_current_context()  # type: ignore[return-value]
    except (ImportError, RuntimeError):  # no task runs in this process
        return None
