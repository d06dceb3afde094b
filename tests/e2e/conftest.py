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

from redis_xcom.ops.airflow_run import AirflowHome, CommandResult, iter_files
from redis_xcom.rows import XComRow
from tests.redis_process import RedisServer
from tests.xcom_checks import assert_rows_agree_with_redis, backend_settings, run_keys, stored_value

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
        return run_keys(self.client, self.prefix, dag_id, run_id)

    def value(self, row: XComRow) -> Any:
        """The value a reference row points at, decoded as the backend would."""
        return stored_value(self.client, row)

    def assert_db_and_redis_agree(self, dag_id: str, run_id: str) -> list[XComRow]:
        """Only references in the DB (skipmixin_key aside), each to a live key with the configured
        TTL, and no key of the run in Redis that the DB does not reference. Returns the rows."""
        rows = self.home.xcoms(dag_id, run_id)
        assert_rows_agree_with_redis(rows, self.client, self.prefix, self.ttl, dag_id, run_id)
        return rows


def describe(result: CommandResult) -> str:
    return (
        f"`{result.command}` exited {result.returncode} in {result.seconds:.1f}s; "
        f"log {result.log_path}{result.tail(40)}"
    )


@pytest.fixture(scope="session")
def e2e(redis_server: RedisServer) -> Iterator[E2E]:
    prefix = f"e2e-{uuid.uuid4().hex[:8]}"
    env = backend_settings(redis_server.url, prefix, TTL)
    home = AirflowHome.create(env=env, prefix="redis-xcom-e2e-")
    try:
        home.add_dags(*iter_files(DAGS))
        home.migrate()
        yield E2E(home, redis_server, prefix, TTL, redis_server.client())
    finally:
        home.cleanup()
