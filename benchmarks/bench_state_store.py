"""State store (AIP-103, Airflow 3.3+): set+get of one key, RedisStateStoreBackend against Airflow's others.

Side by side in one process, interleaved round by round, each a ``[state_store] backend`` as the API
server and the execution API call it (``set(scope, key, json_text)`` then ``get(scope, key)``):
  redis_xcom          redis_xcom.RedisStateStoreBackend on the suite's redis-server
  metastore_sqlite    airflow.state.metastore.MetastoreBackend on a migrated SQLite file
  metastore_postgres  the same on a migrated PostgreSQL database of the benchmark's own (dropped after)
  objectstorage_s3    common-io's StateStoreObjectStorageBackend on S3 served by moto (no compression)
Each metastore call gets a session of its own and commits it, as ``provide_session`` does for the
API server; the DAG run the task scope names exists in both databases. Values are JSON text of
random base64 (about 75% compressible at best: no backend gains from a repeated byte).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._common import BenchContext, configure_backend, fmt_bytes, fmt_seconds, timed
from benchmarks.services import MotoS3, Postgres

NAME = "state_store"
SIZES = (100, 64 * 1024, 1024 * 1024)  # JSON text bytes: a watermark, the REST cap, a large value
COMPETITORS = ("redis_xcom", "metastore_sqlite", "metastore_postgres", "objectstorage_s3")
BASELINE = "redis_xcom"
DAG_ID, RUN_ID, TASK_ID = "bench_state", "bench_run", "bench_task"
S3_CONN_ID = "bench_state_s3"


def json_text(size: int) -> str:
    """A JSON string document of exactly ``size`` bytes, of random base64 (seeded: the same every run)."""
    rng = random.Random(size)
    body = base64.b64encode(rng.randbytes(size)).decode()[: size - 2]
    text = json.dumps(body)
    assert len(text.encode()) == size
    return text


@dataclass
class Databases:
    """The two metadata databases, migrated, each with the DAG run the benchmark's scope names."""

    sqlite_url: str
    postgres_url: str | None
    postgres_kind: str


def _migrate(url: str, home: Path) -> None:
    from redis_xcom.ops.airflow_run import AirflowHome

    migrated = AirflowHome(home)
    migrated.database_url = url
    migrated.migrate()


def _add_dag_run(url: str) -> None:
    """The row a task scope's DAG run is: the metastore looks its id up on every task state write."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO dag_run (dag_id, run_id, run_type, run_after, clear_number, span_status) "
                "VALUES (:dag_id, :run_id, 'manual', CURRENT_TIMESTAMP, 0, 'not_started')"
            ),
            {"dag_id": DAG_ID, "run_id": RUN_ID},
        )
    engine.dispose()


@contextlib.contextmanager
def databases(ctx: BenchContext, root: Path) -> Iterator[Databases]:
    sqlite_url = f"sqlite:///{root / 'metastore.db'}"
    _migrate(sqlite_url, root / "home-sqlite")
    _add_dag_run(sqlite_url)
    with Postgres(ctx.postgres_url) as postgres:
        name = postgres.create(f"redis_xcom_bench_state_{os.getpid()}")
        url = postgres.sqlalchemy_url(name)
        _migrate(url, root / "home-postgres")
        _add_dag_run(url)
        try:
            yield Databases(sqlite_url, url, postgres.kind)
        finally:
            from sqlalchemy import create_engine

            create_engine(url).dispose()  # nothing of ours left connected when it is dropped
    # Postgres.__exit__ dropped the database (and stopped the server when it started one).


def _metastore(url: str) -> Callable[[Any, str, str], str | None]:
    """set then get through MetastoreBackend, each call in its own committed session on url's engine."""
    from airflow.state.metastore import MetastoreBackend
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    backend = MetastoreBackend()
    make_session = sessionmaker(bind=create_engine(url), expire_on_commit=False)

    def set_get(scope: Any, key: str, value: str) -> str | None:
        with make_session() as session:
            backend.set(scope, key, value, session=session)
            session.commit()
        with make_session() as session:
            return backend.get(scope, key, session=session)

    return set_get


def _object_storage(s3: MotoS3) -> Callable[[Any, str, str], str | None]:
    from airflow.providers.common.io.state_store.backend import StateStoreObjectStorageBackend

    backend = StateStoreObjectStorageBackend()

    def set_get(scope: Any, key: str, value: str) -> str | None:
        backend.set(scope, key, value)
        return backend.get(scope, key)

    return set_get


def _ours() -> Callable[[Any, str, str], str | None]:
    from redis_xcom import RedisStateStoreBackend

    backend = RedisStateStoreBackend()

    def set_get(scope: Any, key: str, value: str) -> str | None:
        backend.set(scope, key, value)
        return backend.get(scope, key)

    return set_get


def _s3_settings(s3: MotoS3, prefix: str) -> dict[str, str]:
    """[common.io] state_store_objectstorage_path on the moto bucket, no compression, and its connection."""
    conn = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": s3.endpoint, "region_name": "us-east-1"},
    }
    return {
        "AIRFLOW__COMMON_IO__STATE_STORE_OBJECTSTORAGE_PATH": f"s3://{S3_CONN_ID}@{s3.bucket}/{prefix}",
        "AIRFLOW__COMMON_IO__STATE_STORE_OBJECTSTORAGE_COMPRESSION": "",
        f"AIRFLOW_CONN_{S3_CONN_ID.upper()}": json.dumps(conn),
    }


def run(ctx: BenchContext) -> dict[str, Any]:
    from airflow._shared.state import TaskScope as CoreTaskScope
    from airflow.sdk.state import TaskScope

    configure_backend(ctx)
    # The API server's backends match on airflow-core's TaskScope, common-io's on the task SDK's copy.
    core_scope = CoreTaskScope(DAG_ID, RUN_ID, TASK_ID, -1)
    sdk_scope = TaskScope(DAG_ID, RUN_ID, TASK_ID, -1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="redis-xcom-bench-state-") as tmp, MotoS3() as s3:
        os.environ.update(_s3_settings(s3, ctx.prefix))
        with databases(ctx, Path(tmp)) as dbs:
            set_gets = {
                "redis_xcom": _ours(),
                "metastore_sqlite": _metastore(dbs.sqlite_url),
                "metastore_postgres": _metastore(str(dbs.postgres_url)),
                "objectstorage_s3": _object_storage(s3),
            }
            for size in SIZES:
                value, key = json_text(size), f"value_{size}"
                competitors = {
                    name: _bound(fn, sdk_scope if name == "objectstorage_s3" else core_scope, key, value)
                    for name, fn in set_gets.items()
                }
                for name, fn in competitors.items():  # the same answer every way, or nothing is compared
                    assert fn() == value, f"{name} returned another value for {fmt_bytes(size)}"
                rounds = 3 if ctx.smoke else (21 if size < SIZES[-1] else 11)
                timing = timed(
                    competitors,
                    baseline=BASELINE,
                    rounds=rounds,
                    min_sample_time=0.002 if ctx.smoke else 0.05,
                )
                seconds = {name: timing[name]["seconds"]["median"] for name in competitors}
                ratios = {name: timing[name]["ratio"]["median"] for name in competitors}
                rows.append({"bytes": size, "seconds": seconds, "others_over_ours": ratios, "timing": timing})
                print(
                    f"  {fmt_bytes(size):>8}: "
                    + ", ".join(f"{n} {fmt_seconds(s)} ({ratios[n]:.1f}x)" for n, s in seconds.items()),
                    flush=True,
                )
            postgres_kind = dbs.postgres_kind
    goals = [
        {
            "goal": f"state set+get, {fmt_bytes(row['bytes'])}: redis-xcom faster than {name}",
            "target": "> 1x",
            "measured": row["others_over_ours"][name],
            "spread": [row["timing"][name]["ratio"]["p25"], row["timing"][name]["ratio"]["p75"]],
            "met": row["others_over_ours"][name] > 1.0,
        }
        for row in rows
        for name in COMPETITORS
        if name != BASELINE
    ]
    return {
        "description": (
            "set+get of one task state key through each [state_store] backend, side by side in one "
            "process, interleaved round by round: RedisStateStoreBackend, Airflow's MetastoreBackend on "
            "SQLite and on PostgreSQL (each call its own committed session), and common-io's "
            "StateStoreObjectStorageBackend on S3 served by moto. A ratio is another backend's time over "
            "redis-xcom's (median of per-round ratios): above 1 means redis-xcom is faster."
        ),
        "metadata_db": {"postgres": postgres_kind, "sqlite": "SQLite file"},
        "rows": rows,
        "goals": goals,
    }


def _bound(
    fn: Callable[[Any, str, str], str | None], scope: Any, key: str, value: str
) -> Callable[[], object]:
    return lambda: fn(scope, key, value)
