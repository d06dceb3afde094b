"""The backend's metrics, sent through Airflow's Stats (statsd, Datadog or OpenTelemetry as [metrics] says).

Every name is under ``redis_xcom.`` (docs/metrics.md lists them). When [metrics] sends nothing, each call
is one check of a cached flag: metrics cost nothing when they are off.
"""

from __future__ import annotations

import datetime
import functools
import logging
import time
from typing import Any

from redis_xcom import airflow_compat

log = logging.getLogger(__name__)

PUSHES = "redis_xcom.push"
PUSHES_INLINE = "redis_xcom.push_inline"
PULLS = "redis_xcom.pull"
BYTES_PUSHED = "redis_xcom.push_bytes"
BYTES_PULLED = "redis_xcom.pull_bytes"
EXPIRED_PULLS = "redis_xcom.pull_expired"
REDIS_ERRORS = "redis_xcom.redis_errors"
PUSH_TIME = "redis_xcom.push_time"
PULL_TIME = "redis_xcom.pull_time"
STATE_GETS = "redis_xcom.state_get"
STATE_SETS = "redis_xcom.state_set"
STATE_DELETES = "redis_xcom.state_delete"
STATE_BYTES_SET = "redis_xcom.state_set_bytes"
STATE_TIME = "redis_xcom.state_time"

# name -> (kind, meaning): the table of docs/metrics.md is checked against this one.
METRICS: dict[str, tuple[str, str]] = {
    PUSHES: ("counter", "values pushed to Redis (branch decisions kept inline in the DB are not counted)"),
    PUSHES_INLINE: (
        "counter",
        "values kept inline in the DB by inline_max_bytes instead of Redis (branch decisions not counted)",
    ),
    PULLS: ("counter", "values pulled from Redis (each map index of a mapped pull counts)"),
    BYTES_PUSHED: ("counter", "bytes written to Redis, after serialization and compression"),
    BYTES_PULLED: ("counter", "bytes read from Redis, before decompression"),
    EXPIRED_PULLS: (
        "counter",
        "pulls of a value the DB refers to but Redis no longer holds (XComExpiredError)",
    ),
    REDIS_ERRORS: ("counter", "pushes and pulls that failed on Redis (unreachable, refused, failed command)"),
    PUSH_TIME: ("timer", "milliseconds per push: serialization and the Redis write"),
    PULL_TIME: ("timer", "milliseconds per pull (or per batch of map indexes): the Redis read and decoding"),
    STATE_GETS: ("counter", "state values read from Redis (server-side gets, worker-side references)"),
    STATE_SETS: ("counter", "state values written to Redis (server-side sets, worker-side references)"),
    STATE_DELETES: ("counter", "state store deletes and clears sent to Redis"),
    STATE_BYTES_SET: ("counter", "bytes of state written to Redis, after compression"),
    STATE_TIME: ("timer", "milliseconds per state store get, set, delete or clear, Redis included"),
}


@functools.cache
def _stats() -> Any:
    """Airflow's Stats when [metrics] sends metrics somewhere, else None (checked once per process)."""
    try:
        if not airflow_compat.metrics_enabled():
            return None
        return airflow_compat.airflow_stats()
    except Exception as exc:  # metrics must never fail a push or a pull
        log.warning("redis-xcom metrics are off: Airflow's Stats could not be loaded: %s", exc)
        return None


def incr(name: str, count: int = 1) -> None:
    stats = _stats()
    if stats is not None:
        stats.incr(name, count)


def pushed(size: int, started: float) -> None:
    stats = _stats()
    if stats is not None:
        stats.incr(PUSHES)
        stats.incr(BYTES_PUSHED, size)
        stats.timing(PUSH_TIME, datetime.timedelta(seconds=time.perf_counter() - started))


def pulled(count: int, size: int, started: float) -> None:
    stats = _stats()
    if stats is not None:
        stats.incr(PULLS, count)
        stats.incr(BYTES_PULLED, size)
        stats.timing(PULL_TIME, datetime.timedelta(seconds=time.perf_counter() - started))


def state_call(name: str, started: float, size: int = 0) -> None:
    """One state store call: its counter, its bytes (sets) and its time."""
    stats = _stats()
    if stats is not None:
        stats.incr(name)
        if size:
            stats.incr(STATE_BYTES_SET, size)
        stats.timing(STATE_TIME, datetime.timedelta(seconds=time.perf_counter() - started))


def reset() -> None:
    """Forget whether metrics are on (tests, or after changing [metrics])."""
    _stats.cache_clear()
