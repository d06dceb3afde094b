"""Airflow glue: ExclusiveRedisXCom keeps every XCom payload in Redis and only a reference in the DB.

Airflow 3.4 calls store_value on push (with the writing task instance's id, so every attempt and
loop iteration has a key of its own) and load_value / _load_many on pull; Airflow 3.0 to 3.3 call
serialize_value and deserialize_value, and get_all for pulls over many map indexes. delete calls
purge for the rows a task's run replaces. See docs/guarantees.md for what Airflow never calls.

With [redis_xcom] inline_max_bytes (hybrid mode, docs/hybrid.md), the small values inline.py admits
stay in the DB row through BaseXCom's own hooks, and load through Airflow's deserializer as any row
that holds no reference.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from airflow.sdk.bases.xcom import BaseXCom

from redis_xcom import airflow_compat, clearing, inline, keys, metrics
from redis_xcom.codec import recorded_length
from redis_xcom.errors import (
    CodecError,
    RedisXComError,
    ReplicationError,
    UntrustedReferenceError,
    ValueTooLargeError,
    XComExpiredError,
)
from redis_xcom.runtime import Runtime, get_runtime
from redis_xcom.storage.server_info import ServerInfo

log = logging.getLogger(__name__)

# The scheduler reads branching decisions straight from the xcom table (apache/airflow#50491),
# so this key must stay inline in the DB.
SKIPMIXIN_KEY = "skipmixin_key"
_SAFE_EVICTION_POLICY = "noeviction"
# The row a pull reads, as the pulling call names it (get_one, get_all): its reference must be its own.
_pulling: contextvars.ContextVar[keys.RowCoordinates | None] = contextvars.ContextVar(
    "redis_xcom_pulling", default=None
)
# The row delete() is removing, so that purge deletes only a value confirmed to be that row's own.
_deleting: contextvars.ContextVar[keys.RowCoordinates | None] = contextvars.ContextVar(
    "redis_xcom_deleting", default=None
)
_XCOM_VALUE_WRAPPER = airflow_compat.xcom_value_wrapper()


class _Known:
    """Names a row in one of the context variables above for the length of a ``with`` block (a
    plain class: on the pull path, a generator-based context manager costs about a microsecond more)."""

    __slots__ = ("row", "token", "var")

    def __init__(
        self, var: contextvars.ContextVar[keys.RowCoordinates | None], row: keys.RowCoordinates
    ) -> None:
        self.var = var
        self.row = row

    def __enter__(self) -> None:
        self.token = self.var.set(self.row)

    def __exit__(self, *exc: object) -> None:
        self.var.reset(self.token)


# What a row passed to deserialize_value or purge may carry besides .value (a DB row on 3.0's API server).
_ROW_FIELDS = ("dag_id", "run_id", "task_id", "key", "map_index", "task_instance_id")
# Each with its place in RowCoordinates: a tuple index, not a getattr, on every pull.
_ROW_FIELDS_AT = tuple((name, keys.RowCoordinates._fields.index(name)) for name in _ROW_FIELDS)


def _warn_if_evicting(info: ServerInfo) -> None:
    """One warning per process when Redis may evict XCom values (all have a TTL, so volatile-* too)."""
    try:
        policy = info.eviction_policy()
    except RedisXComError as exc:
        log.debug("Could not read maxmemory-policy: %s", exc)
        return
    if policy is None:
        log.warning(
            "Could not read the maxmemory-policy of Redis at %s (CONFIG GET and INFO are denied or "
            "disabled there): if it evicts keys, pulls of evicted XCom values will fail with "
            "XComExpiredError. Make sure it is noeviction (managed services: in the parameter group).",
            info.endpoint,
        )
    elif policy != _SAFE_EVICTION_POLICY:
        log.warning(
            "Redis at %s has maxmemory-policy %r: under memory pressure it may evict XCom values, "
            "and pulls of them will fail with XComExpiredError. Set maxmemory-policy noeviction.",
            info.endpoint,
            policy,
        )


def _coordinates(
    dag_id: str | None, run_id: str | None, task_id: str | None, map_index: int | None, key: str | None
) -> keys.XComCoordinates:
    if dag_id is None or run_id is None or task_id is None or key is None:
        raise RedisXComError(
            "ExclusiveRedisXCom.serialize_value needs dag_id, run_id, task_id and key to name the "
            f"Redis key; got dag_id={dag_id!r}, run_id={run_id!r}, task_id={task_id!r}, key={key!r}"
        )
    return keys.XComCoordinates(dag_id, run_id, task_id, -1 if map_index is None else map_index, key)


def _describe_key(redis_key: str) -> str:
    coords = keys.parse_key(redis_key)
    return coords.describe() if coords else f"XCom stored under Redis key {redis_key!r}"


class ExclusiveRedisXCom(BaseXCom):
    """Every XCom payload in Redis (msgpack, with a TTL); the DB row holds ``redis-xcom://<key>``."""

    @staticmethod
    def serialize_value(
        value: Any,
        *,
        key: str | None = None,
        task_id: str | None = None,
        dag_id: str | None = None,
        run_id: str | None = None,
        map_index: int | None = None,
    ) -> Any:
        """Airflow 3.0 to 3.3: one key per (dag, run, task, map index, key); small plain values inline
        with inline_max_bytes."""
        if key == SKIPMIXIN_KEY or _kept_inline(value):
            return BaseXCom.serialize_value(
                value, key=key, task_id=task_id, dag_id=dag_id, run_id=run_id, map_index=map_index
            )
        return _store(_coordinates(dag_id, run_id, task_id, map_index, key), value)

    @classmethod
    def store_value(cls, coordinate: Any, key: str, value: Any) -> Any:
        """Airflow 3.4: one key per task instance (attempt, loop iteration), or per write when the
        writer is not the task instance itself (``coordinate.ti_id`` is None); small plain values
        inline with inline_max_bytes."""
        if key == SKIPMIXIN_KEY or _kept_inline(value):
            # BaseXCom's own store_value: the value in the DB row, as Airflow's default backend stores it.
            return super().store_value(coordinate, key, value)  # type: ignore[misc]
        if coordinate.ti_id is None:
            coords = keys.XComCoordinates(
                coordinate.dag_id, coordinate.run_id, coordinate.task_id, None, key, keys.new_write()
            )
        else:
            region_index = coordinate.region_index
            coords = keys.XComCoordinates(
                coordinate.dag_id,
                coordinate.run_id,
                coordinate.task_id,
                -1 if region_index is None else region_index,
                key,
                keys.task_instance_of(coordinate.ti_id),
            )
        return _store(coords, value)

    @staticmethod
    def deserialize_value(result: Any) -> Any:
        """Airflow 3.0 to 3.3's pull of one row: its reference is followed only if it is the row's own,
        as far as the row is known (see _pulled_row)."""
        return _pull(result, unbound_legacy=True)

    @classmethod
    def load_value(cls, stored: Any) -> Any:
        """Airflow 3.4's pull of one row: as deserialize_value, and a reference in the form 3.0 to 3.3
        wrote (no task instance) is followed only for a row whose DAG is known."""
        return _pull(_XCOM_VALUE_WRAPPER(stored), unbound_legacy=False)

    @classmethod
    def _load_many(cls, values: list[Any]) -> list[Any]:
        """Airflow 3.4's get_all: every Redis read of the rows in one round trip."""
        return _pull_many(values, unbound_legacy=False)

    @classmethod
    def get_one(
        cls,
        *,
        key: str,
        dag_id: str,
        task_id: str,
        run_id: str,
        map_index: int | None = None,
        include_prior_dates: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Airflow's get_one (xcom_pull of one map index), with the row it reads known to the check."""
        # The execution API reads map index -1 when none is named.
        one = -1 if map_index is None else map_index
        with _Known(_pulling, _requested_row(dag_id, run_id, task_id, key, include_prior_dates, one)):
            return super().get_one(
                key=key,
                dag_id=dag_id,
                task_id=task_id,
                run_id=run_id,
                map_index=map_index,
                include_prior_dates=include_prior_dates,
                **kwargs,
            )

    @classmethod
    async def aget_one(
        cls,
        *,
        key: str,
        dag_id: str,
        task_id: str,
        run_id: str,
        map_index: int | None = None,
        include_prior_dates: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Airflow's aget_one (3.3+), with the row it reads known to the check (the worker thread 3.4
        loads it in inherits the context)."""
        # The execution API reads map index -1 when none is named.
        one = -1 if map_index is None else map_index
        with _Known(_pulling, _requested_row(dag_id, run_id, task_id, key, include_prior_dates, one)):
            return await super().aget_one(
                key=key,
                dag_id=dag_id,
                task_id=task_id,
                run_id=run_id,
                map_index=map_index,
                include_prior_dates=include_prior_dates,
                **kwargs,
            )

    @classmethod
    def get_all(
        cls,
        *,
        key: str,
        dag_id: str,
        task_id: str,
        run_id: str,
        include_prior_dates: bool = False,
    ) -> Any:
        """All map indexes of one task, their Redis values fetched in one round trip."""
        request = _all_map_indexes(key, dag_id, task_id, run_id, include_prior_dates)
        reply = airflow_compat.send_to_supervisor(request)
        with _Known(_pulling, _requested_row(dag_id, run_id, task_id, key, include_prior_dates)):
            return cls._deserialize_slice(reply)

    @classmethod
    async def aget_all(
        cls,
        *,
        key: str,
        dag_id: str,
        task_id: str,
        run_id: str,
        include_prior_dates: bool = False,
    ) -> Any:
        """get_all for async callers (deferrable operators): the same single Redis round trip."""
        request = _all_map_indexes(key, dag_id, task_id, run_id, include_prior_dates)
        reply = await airflow_compat.send_to_supervisor_async(request)
        with _Known(_pulling, _requested_row(dag_id, run_id, task_id, key, include_prior_dates)):
            # Off the event loop, as Airflow 3.4 does: it may also serve a triggerer's other triggers.
            return await asyncio.to_thread(cls._deserialize_slice, reply)

    @classmethod
    def _deserialize_slice(cls, msg: Any) -> list[Any] | None:
        from airflow.sdk.execution_time.comms import XComSequenceSliceResult

        if not isinstance(msg, XComSequenceSliceResult):
            raise TypeError(f"Expected XComSequenceSliceResult, received: {type(msg)} {msg}")
        # As BaseXCom.get_all: None, not [], when nothing matched.
        return cls.deserialize_many(msg.root) if msg.root else None

    @classmethod
    def deserialize_many(cls, values: Sequence[Any]) -> list[Any]:
        """deserialize_value for each stored value, with every Redis read batched into one pipeline."""
        return _pull_many(values, unbound_legacy=True)

    @classmethod
    def delete(cls, key: str, task_id: str, dag_id: str, run_id: str, map_index: int | None = None) -> None:
        """Airflow's delete, with the row it removes known to purge (its only caller)."""
        with _Known(_deleting, _deleted_row(dag_id, run_id, task_id, key, map_index)):
            super().delete(key, task_id, dag_id, run_id, map_index)

    @classmethod
    def purge(cls, xcom: Any, *args: Any) -> None:
        """UNLINK the value of a row being deleted (Airflow 3.0 to 3.3: before a retry or re-run; 3.4:
        when a task instance's run replaces its own rows, never an earlier attempt's).

        Only a value confirmed to be that row's own goes: every coordinate that identifies it (dag,
        run, task, key, map index; on 3.4 the writing task instance) known of the row and equal.
        Anything else stays in Redis, for its TTL or `redis-xcom gc`.
        """
        prefix = get_runtime().settings.key_prefix
        row = _row_carried_by(xcom, _deleting.get() or keys.RowCoordinates())
        try:
            redis_key = keys.owned_key(getattr(xcom, "value", None), row, prefix)
        except UntrustedReferenceError as exc:
            log.warning("Not purging: %s", exc)
            return
        if redis_key is None:
            return
        coords = keys.parse_key(redis_key, prefix)
        if coords is None or not keys.belongs_to_row(coords, row, confirmed=True):
            log.info(
                "Not purging %s while deleting %s: nothing says the value is that row's own (on Airflow "
                "3.4, the task instance whose row is deleted is known only inside its own run). It stays "
                "in Redis until its TTL or `redis-xcom gc`.",
                coords.describe() if coords else redis_key,
                row.describe(),
            )
            return
        # Dropped from its run's index too, so the index names exactly the run's live keys.
        index = keys.run_index_key(prefix, coords.dag_id, coords.run_id)
        get_runtime().store.unlink_indexed(index, [redis_key])

    @classmethod
    def clear(
        cls,
        *,
        dag_id: str,
        run_id: str | None = None,
        task_id: str | None = None,
        map_index: int | None = None,
        key: str | None = None,
    ) -> int:
        """Delete the Redis values of a selection (None means any); returns how many were deleted.

        With a run_id, the run's index names its keys: the cost follows the run's size, not the
        keyspace's. Without one, SCAN MATCH walks the keyspace. Only Redis is touched: the DB rows
        stay and would then raise XComExpiredError on pull.
        """
        return clearing.clear(get_runtime(), keys.Selection(dag_id, run_id, task_id, map_index, key))

    @classmethod
    def keys_to_clear(
        cls,
        *,
        dag_id: str,
        run_id: str | None = None,
        task_id: str | None = None,
        map_index: int | None = None,
        key: str | None = None,
    ) -> Iterator[list[str]]:
        """Batches of the Redis keys clear() with the same arguments would delete (for a dry run)."""
        selection = keys.Selection(dag_id, run_id, task_id, map_index, key)
        for _, chosen in clearing.selected_keys(get_runtime(), selection):
            yield chosen


def _all_map_indexes(key: str, dag_id: str, task_id: str, run_id: str, include_prior_dates: bool) -> Any:
    """The execution-API request BaseXCom.get_all sends: every map index of one task."""
    from airflow.sdk.execution_time.comms import GetXComSequenceSlice

    return GetXComSequenceSlice(
        key=key,
        dag_id=dag_id,
        task_id=task_id,
        run_id=run_id,
        start=None,
        stop=None,
        step=None,
        include_prior_dates=include_prior_dates,
    )


def _store(coords: keys.XComCoordinates, value: Any) -> str:
    """Encode a value, write it under the key of coords with the TTL, and return the row's reference."""
    started = time.perf_counter()
    runtime = get_runtime()
    try:
        parts = runtime.codec.encode_parts(value)
    except TypeError as exc:
        raise TypeError(f"{coords.describe()} cannot be stored: {exc}") from exc
    size = stored = len(parts[0]) if len(parts) == 1 else sum(len(part) for part in parts)
    if runtime.codec.compression != "none":
        # Readers refuse a value recording more decompressed bytes than max_value_bytes: so do writers
        # (only a compressed value records more than it stores).
        size = max(stored, recorded_length(parts[0]) or 0)
    if size > runtime.settings.max_value_bytes:
        raise ValueTooLargeError(
            f"{coords.describe()} serializes to {size} bytes, above [redis_xcom] max_value_bytes "
            f"= {runtime.settings.max_value_bytes}; nothing was written. Pass a smaller value "
            "(for example a path to the data) or raise max_value_bytes."
        )
    redis_key, index = keys.build_key_and_index(runtime.settings.key_prefix, coords)
    try:
        runtime.store.put(redis_key, parts, runtime.settings.ttl, index)
    except ReplicationError as exc:
        _count_failure(exc)
        raise ReplicationError(f"{coords.describe()}: {exc}") from None
    except RedisXComError as exc:
        _count_failure(exc)
        raise
    metrics.pushed(stored, started)
    if not runtime.eviction_checked:
        runtime.eviction_checked = True
        _warn_if_evicting(runtime.info)
    return keys.to_reference(redis_key)


def _kept_inline(value: Any) -> bool:
    """Whether the value stays in the DB row (inline_max_bytes), counted when it does."""
    limit = get_runtime().settings.inline_max_bytes
    if limit and inline.kept_inline(value, limit):
        metrics.incr(metrics.PUSHES_INLINE)
        return True
    return False


def _pull(result: Any, *, unbound_legacy: bool) -> Any:
    """One row's value: from Redis for a reference of the row's own, else Airflow's own value."""
    runtime = get_runtime()
    row = _row_carried_by(result, _pulled_row())
    redis_key = keys.owned_key(result.value, row, runtime.settings.key_prefix, unbound_legacy=unbound_legacy)
    if redis_key is None:
        # REST-API rows, trigger events, skipmixin and rows from before the switch.
        return BaseXCom.deserialize_value(result)
    started = time.perf_counter()
    try:
        data = runtime.store.get(redis_key)
    except RedisXComError as exc:
        _count_failure(exc)
        raise
    value = _decode(runtime, redis_key, data)
    metrics.pulled(1, len(data) if data is not None else 0, started)
    return value


def _pull_many(values: Sequence[Any], *, unbound_legacy: bool) -> list[Any]:
    """Each stored value's value, with every Redis read batched into one pipeline. Every reference
    is checked before anything is read: one that is not its row's own fails the whole pull."""
    runtime = get_runtime()
    row, prefix = _pulled_row(), runtime.settings.key_prefix
    redis_keys = [keys.owned_key(value, row, prefix, unbound_legacy=unbound_legacy) for value in values]
    uses = Counter(k for k in redis_keys if k is not None)
    if not uses:
        return [BaseXCom.deserialize_value(_XCOM_VALUE_WRAPPER(value)) for value in values]
    started = time.perf_counter()
    try:
        fetched = dict(zip(uses, runtime.store.get_many(list(uses)), strict=True))
    except RedisXComError as exc:
        _count_failure(exc)
        raise
    size = sum(len(data) for data in fetched.values() if data is not None)
    count = sum(uses.values())
    pulled = []
    for value, redis_key in zip(values, redis_keys, strict=True):
        if redis_key is None:
            pulled.append(BaseXCom.deserialize_value(_XCOM_VALUE_WRAPPER(value)))
            continue
        pulled.append(_decode(runtime, redis_key, fetched[redis_key]))
        uses[redis_key] -= 1
        if not uses[redis_key]:
            del fetched[redis_key]  # free the raw bytes once decoded: peak memory stays lower
    metrics.pulled(count, size, started)
    return pulled


def _requested_row(
    dag_id: str, run_id: str, task_id: str, key: str, include_prior_dates: bool, map_index: int | None = None
) -> keys.RowCoordinates:
    """The rows a get_all request reads (every map index), or with map_index the row get_one reads."""
    return keys.RowCoordinates(
        dag_id,
        # With prior dates, the latest run holding the XCom answers: not necessarily this one.
        None if include_prior_dates else run_id,
        task_id,
        key,
        public_map_index=map_index,
    )


def _pulled_row() -> keys.RowCoordinates:
    """What is known of the row a pull reads: what the pulling call named (get_one, get_all), else
    the DAG run of the task running here, since Airflow reads a mapped sequence's items only from
    the DAG run of the task that consumes them; nothing outside a task."""
    row = _pulling.get()
    if row is not None:
        return row
    ti = airflow_compat.running_task_instance()
    return keys.RowCoordinates() if ti is None else keys.RowCoordinates(ti.dag_id, ti.run_id)


def _deleted_row(
    dag_id: str, run_id: str, task_id: str, key: str, map_index: int | None
) -> keys.RowCoordinates:
    """The row delete() removes. The execution API resolves coordinates to their current task
    instance: when they are the running one's own, that is the row's task instance (as Airflow's
    own coordinate lookup decides); otherwise it is not known here."""
    public = -1 if map_index is None else map_index  # the execution API reads -1 when none is named
    row = keys.RowCoordinates(dag_id, run_id, task_id, key, public_map_index=public)
    ti = airflow_compat.running_task_instance()
    if ti is None or (ti.dag_id, ti.run_id, ti.task_id) != (dag_id, run_id, task_id):
        return row
    if (-1 if ti.map_index is None else ti.map_index) != public:
        return row
    return row._replace(task_instance_id=keys.as_uuid(getattr(ti, "id", None)))


def _row_carried_by(xcom: Any, row: keys.RowCoordinates) -> keys.RowCoordinates:
    """The row as known, completed by what the object itself carries (only .value is guaranteed;
    a DB row, as 3.0's API server passes, carries all its coordinates)."""
    # Read from the instance's own attributes: a missing one costs pydantic's __getattr__ some 5 µs.
    fields = getattr(xcom, "__dict__", None)
    if not fields:
        return row
    merged = None
    for name, at in _ROW_FIELDS_AT:
        carried = fields.get(name)
        # Most pulls carry only the key the call already named: no new row to build.
        if carried is None or carried == row[at]:
            continue
        if name == "task_instance_id" and (carried := keys.as_uuid(carried)) == row[at]:
            continue
        if merged is None:
            merged = list(row)
        merged[at] = carried
    return row if merged is None else keys.RowCoordinates._make(merged)


def _count_failure(exc: RedisXComError) -> None:
    """A failed Redis call counts as a Redis error; a corrupt value read from it does not."""
    if not isinstance(exc, CodecError):
        metrics.incr(metrics.REDIS_ERRORS)


def _decode(runtime: Runtime, redis_key: str, data: bytes | None) -> Any:
    if data is None:
        metrics.incr(metrics.EXPIRED_PULLS)
        raise XComExpiredError(
            f"{_describe_key(redis_key)} is referenced by the metadata DB but its value is gone from "
            f"Redis at {runtime.store.endpoint} (key {redis_key!r}): it expired ([redis_xcom] ttl = "
            f"{runtime.settings.ttl}s), was evicted, or was deleted. Clear and re-run the task that "
            "produced it to recreate it."
        )
    try:
        return runtime.codec.decode(data)
    except CodecError as exc:
        raise type(exc)(
            f"{_describe_key(redis_key)} could not be decoded from Redis key {redis_key!r}: {exc}"
        ) from exc
