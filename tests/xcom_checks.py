"""What every end-to-end and deployment test checks after DAG runs: the DB and Redis agree.

Shared by tests/e2e (SQLite, `airflow dags test`) and tests/deployment (PostgreSQL, a real
scheduler and executor); each reads the `xcom` rows its own way and hands them here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from redis_xcom import keys
from redis_xcom.backend import SKIPMIXIN_KEY
from redis_xcom.codec import Codec
from redis_xcom.rows import XComRow


def run_keys(client: redis.Redis, prefix: str, dag_id: str, run_id: str) -> set[str]:
    """Every Redis key of one DAG run (scanned, not taken from the DB)."""
    pattern = keys.run_tag(prefix, dag_id, run_id) + ":*"
    return {k.decode() for k in client.scan_iter(match=pattern, count=1000)}


def stored_value(client: redis.Redis, row: XComRow) -> Any:
    """The value a reference row points at, decoded as the backend would."""
    redis_key = keys.key_of_reference(row.value)
    assert redis_key is not None, f"{row} is not a reference"
    data = client.get(redis_key)
    assert data is not None, f"{redis_key!r} is missing from Redis"
    return Codec().decode(data)  # type: ignore[arg-type]


def assert_rows_agree_with_redis(
    rows: Sequence[XComRow], client: redis.Redis, prefix: str, ttl: int, dag_id: str, run_id: str
) -> None:
    """Only references in the rows (skipmixin_key aside), each to a live key with a TTL in
    (0, ttl], and no key of the run in Redis (nor in its index) that the rows do not reference."""
    assert rows, f"no XCom rows for {dag_id}/{run_id}"
    referenced = {_live_reference(row, client, ttl) for row in rows} - {None}
    stray = run_keys(client, prefix, dag_id, run_id) - referenced
    assert not stray, f"keys in Redis that no DB row references: {sorted(stray)}"
    index = keys.run_index_key(prefix, dag_id, run_id)
    indexed = {m.decode() for m in client.smembers(index)}
    assert indexed == referenced, f"the run's index differs from the DB: {indexed ^ referenced}"


# Rows Airflow's scheduler writes into the DB itself, never through a backend: 3.4's loop decisions.
AIRFLOW_OWN_KEY_PREFIX = "_airflow_loop_"


def _live_reference(row: XComRow, client: redis.Redis, ttl: int) -> str | None:
    """The Redis key a row refers to, checked alive with the configured TTL (None for skipmixin and
    the rows Airflow writes itself)."""
    redis_key = keys.key_of_reference(row.value)
    if row.key == SKIPMIXIN_KEY:
        assert redis_key is None and isinstance(row.value, dict), f"skipmixin_key must stay inline: {row}"
        return None
    if row.key.startswith(AIRFLOW_OWN_KEY_PREFIX):
        assert redis_key is None, f"Airflow writes {row.key} itself: {row}"
        return None
    assert redis_key is not None, f"the DB holds a value, not a reference: {row}"
    remaining = client.ttl(redis_key)
    assert 0 < remaining <= ttl, (
        f"{redis_key!r}: TTL {remaining} (-2 = missing, -1 = none), want 0 < ttl <= {ttl}"
    )
    return redis_key


def backend_settings(redis_url: str, key_prefix: str, ttl: int) -> dict[str, str]:
    """The AIRFLOW__* variables that switch a test's Airflow to this backend on its own Redis."""
    return {
        "AIRFLOW__CORE__XCOM_BACKEND": "redis_xcom.ExclusiveRedisXCom",
        "AIRFLOW__REDIS_XCOM__URL": redis_url,
        "AIRFLOW__REDIS_XCOM__KEY_PREFIX": key_prefix,
        "AIRFLOW__REDIS_XCOM__TTL": str(ttl),
    }
