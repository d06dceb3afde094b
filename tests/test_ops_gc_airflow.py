"""`redis-xcom gc` against Airflow's own metadata DB (SQLite and PostgreSQL), after DAG runs made
with `airflow dags test` and rows deleted the way `airflow db clean` and a DAG-run delete do."""

from __future__ import annotations

import datetime
import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from redis_xcom import keys
from redis_xcom.ops.airflow_run import AirflowHome
from tests.dags_test_many import DagTest, dags_test_many
from tests.key_helpers import build_key
from tests.postgres_process import PostgresServer
from tests.redis_process import RedisServer
from tests.xcom_calls import value_keys
from tests.xcom_checks import backend_settings

# e2e too: it runs `airflow dags test` (about 200 s in all), so CI starts it among the slow files.
pytestmark = [pytest.mark.integration, pytest.mark.e2e]
DAG_FILE = Path(__file__).parent / "ops_dags" / "gc_dag.py"
PREFIX = "gc-airflow"
# Longer than starting the gc process takes on a loaded machine, shorter than a DAG run or two.
GRACE = 20
# Deleting a DAG run as the REST API and the UI do: the ORM delete, the xcom rows go by FK cascade.
DELETE_RUN = """
import sys
import threading
from sqlalchemy import select
from airflow.models.dagrun import DagRun
from airflow.utils.session import create_session
with create_session() as session:
    session.delete(session.scalar(select(DagRun).where(DagRun.run_id == sys.argv[1])))
"""


def run(
    env: dict[str, str], *args: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(
            f"{args} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done


RUNS_SQL = "SELECT run_id, logical_date, end_date FROM dag_run WHERE dag_id = 'gc_dag'"


def _query(connection: Any, sql: str) -> list[tuple[Any, ...]]:
    with closing(connection):
        cursor = connection.cursor()
        cursor.execute(sql)
        return [tuple(row) for row in cursor.fetchall()]


def _utc(stamp: Any) -> datetime.datetime:
    """A timestamp as the DB returns it (a datetime from PostgreSQL, text from SQLite), in UTC."""
    if not isinstance(stamp, datetime.datetime):
        stamp = datetime.datetime.fromisoformat(str(stamp).replace(" ", "T"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    return stamp.astimezone(datetime.timezone.utc)


def gc(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    done = run(env, "-m", "redis_xcom", "gc", "--json", "--grace", str(GRACE), *args, check=False)
    assert done.returncode in (0, 1) and done.stdout.strip(), done.stderr[-3000:]
    return done.returncode, json.loads(done.stdout)


# Three `airflow dags test` runs and two gc processes: minutes on a loaded machine.
@pytest.mark.timeout(1500)
# PostgreSQL with the deployment tests: `make test`, and the matrix on 3.0.6 only; SQLite everywhere.
@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.deployment)])
def test_gc_deletes_exactly_the_orphans_of_deleted_rows(
    database: str, fresh_redis_server: RedisServer, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    home = AirflowHome(tmp_path / "home", env=backend_settings(fresh_redis_server.url, PREFIX, 3600))
    home.add_dags(DAG_FILE)
    read_runs: Callable[[], list[tuple[Any, ...]]]
    if database == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        name = server.create_database("gc")
        home.database_url = server.sqlalchemy_url(name)
        read_runs = lambda: _query(server.connect(name), RUNS_SQL)  # noqa: E731
    else:
        read_runs = lambda: _query(sqlite3.connect(home.db_path), RUNS_SQL)  # noqa: E731
    env = home.environ()
    run(env, "-m", "airflow", "db", "migrate", timeout=600)
    client = fresh_redis_server.client()

    def run_keys(run_id: str) -> set[str]:
        return value_keys(client, keys.run_tag(PREFIX, "gc_dag", run_id) + ":*")

    # The three runs one after the other in one interpreter (Airflow's import is most of a short
    # `dags test`); the DB says which run is which and when each ended.
    dates = [f"2024-01-0{day}T00:00:00+00:00" for day in (1, 2, 3)]
    done = dags_test_many(home, [DagTest("gc_dag", date) for date in dates], timeout=900)
    assert all(result.ok for result in done), done[0].tail(80)
    ended = sorted((_utc(logical), run_id, _utc(end)) for run_id, logical, end in read_runs())
    assert [logical.isoformat() for logical, _, _ in ended] == dates, ended
    runs = {day: run_id for day, (_, run_id, _) in enumerate(ended, start=1)}
    for day, run_id in runs.items():
        assert len(run_keys(run_id)) == 4, f"run {day}: numbers, two doubles, total: {run_keys(run_id)}"
    # Run 1's rows go as `airflow db clean` deletes them (written before run 1 ended, and run 2's
    # after); run 2 goes with its DAG run.
    cleaned_before = ended[0][2].isoformat()
    run(env, "-m", "airflow", "db", "clean", "--clean-before-timestamp", cleaned_before,
        "--tables", "xcom", "--skip-archive", "--yes")  # fmt: skip
    run(env, "-c", DELETE_RUN, runs[2])
    # A row whose value is gone from Redis (expired or evicted).
    gone = sorted(run_keys(runs[3]))[0]
    client.unlink(gone)
    kept = run_keys(runs[3])
    orphans = run_keys(runs[1]) | run_keys(runs[2])
    # The orphans were last read in run 2: older than the grace once it has passed since then.
    run_2_ended = ended[1][2].timestamp()
    time.sleep(max(0.0, run_2_ended + GRACE + 1 - time.time()))
    # A value whose task has just pushed and not yet committed its row: written again every half
    # second while gc runs (starting gc takes seconds on a loaded machine), so always fresh.
    fresh = build_key(PREFIX, keys.XComCoordinates("gc_dag", "manual__now", "t", -1, "return_value"))

    def gc_after_a_fresh_push(*args: str) -> tuple[int, dict[str, Any]]:
        stop = threading.Event()

        def keep_pushing() -> None:
            while not stop.is_set():
                client.set(fresh, b"v", ex=3600)
                stop.wait(0.5)

        pusher = threading.Thread(target=keep_pushing)
        pusher.start()
        try:
            return gc(env, *args)
        finally:
            stop.set()
            pusher.join()

    code, report = gc_after_a_fresh_push("--yes")
    assert code == 1 and report["stopped_by_guard"], "8 of 12 would go: more than half"
    assert (report["examined"], report["to_delete"], report["kept_in_grace"]) == (8 + 3 + 1, 8, 1), report
    assert report["rows_without_value_by_dag"] == {"gc_dag": 1}
    assert orphans <= value_keys(client, f"{PREFIX}:*"), "the guard deleted nothing"
    code, report = gc_after_a_fresh_push("--yes", "--force")
    assert code == 0 and report["deleted"] == 8, report
    assert value_keys(client, f"{PREFIX}:*") == kept | {fresh}
    for day in (1, 2):
        assert not client.exists(keys.run_index_key(PREFIX, "gc_dag", runs[day])), "their indexes went too"
    assert len(client.smembers(keys.run_index_key(PREFIX, "gc_dag", runs[3]))) == 4  # gone one: TTL's job
