"""Shared set-up of the end-to-end tests: one migrated AIRFLOW_HOME and one key prefix per session.

Every DAG runs through `airflow dags test` (tasks run in-process, through the real execution API,
SQLite metadata DB) against a redis-server the suite starts itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from redis_xcom import keys
from redis_xcom.backend import SKIPMIXIN_KEY
from redis_xcom.codec import Codec
from redis_xcom.ops.airflow_run import AirflowHome, CommandResult, XComRow, iter_files
from tests.redis_process import RedisServer

DAGS = Path(__file__).parent / "dags"
TTL = 3600  # not the default, so the test also sees [redis_xcom] ttl reach the tasks


@dataclass
class E2E:
    """The session's Airflow home and Redis, and the checks every e2e test makes."""

    home: AirflowHome
    server: RedisServer
    prefix: str
    ttl: int
    client: redis.Redis

    def run_keys(self, dag_id: str, run_id: str) -> set[str]:
        """Every Redis key of one DAG run (scanned, not taken from the DB)."""
        pattern = keys.run_tag(self.prefix, dag_id, run_id) + ":*"
        return {k.decode() for k in self.client.scan_iter(match=pattern, count=1000)}

    def value(self, row: XComRow) -> Any:
        """The value a reference row points at, decoded as the backend would."""
        redis_key = keys.key_of_reference(row.value)
        assert redis_key is not None, f"{row} is not a reference"
        data = self.client.get(redis_key)
        assert data is not None, f"{redis_key!r} is missing from Redis"
        return Codec().decode(data)  # type: ignore[arg-type]

    def assert_db_and_redis_agree(self, dag_id: str, run_id: str) -> list[XComRow]:
        """Only references in the DB (skipmixin_key aside), each to a live key with the configured
        TTL, and no key of the run in Redis that the DB does not reference. Returns the rows."""
        rows = self.home.xcoms(dag_id, run_id)
        assert rows, f"no XCom rows for {dag_id}/{run_id}"
        referenced = set()
        for row in rows:
            redis_key = keys.key_of_reference(row.value)
            if row.key == SKIPMIXIN_KEY:
                assert redis_key is None and isinstance(row.value, dict), (
                    f"skipmixin_key must stay inline: {row}"
                )
                continue
            assert redis_key is not None, f"the DB holds a value, not a reference: {row}"
            ttl = self.client.ttl(redis_key)
            assert 0 < ttl <= self.ttl, (
                f"{redis_key!r}: TTL {ttl} (-2 = missing, -1 = none), want 0 < ttl <= {self.ttl}"
            )
            referenced.add(redis_key)
        stray = self.run_keys(dag_id, run_id) - referenced
        assert not stray, f"keys in Redis that no DB row references: {sorted(stray)}"
        index = keys.run_index_key(self.prefix, dag_id, run_id)
        indexed = {m.decode() for m in self.client.smembers(index)}
        assert indexed == referenced, f"the run's index differs from the DB: {indexed ^ referenced}"
        return rows


def describe(result: CommandResult) -> str:
    return (
        f"`{result.command}` exited {result.returncode} in {result.seconds:.1f}s; "
        f"log {result.log_path}{result.tail(40)}"
    )


@pytest.fixture(scope="session")
def e2e(redis_server: RedisServer) -> Iterator[E2E]:
    prefix = f"e2e-{uuid.uuid4().hex[:8]}"
    env = {
        "AIRFLOW__CORE__XCOM_BACKEND": "redis_xcom.ExclusiveRedisXCom",
        "AIRFLOW__REDIS_XCOM__URL": redis_server.url,
        "AIRFLOW__REDIS_XCOM__KEY_PREFIX": prefix,
        "AIRFLOW__REDIS_XCOM__TTL": str(TTL),
    }
    home = AirflowHome.create(env=env, prefix="redis-xcom-e2e-")
    try:
        home.add_dags(*iter_files(DAGS))
        home.migrate()
        yield E2E(home, redis_server, prefix, TTL, redis_server.client())
    finally:
        home.cleanup()
