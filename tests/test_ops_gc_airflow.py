"""`redis-xcom gc` against Airflow's own metadata DB (SQLite and PostgreSQL), after DAG runs made
with `airflow dags test` and rows deleted the way `airflow db clean` and a DAG-run delete do."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from redis_xcom import keys
from redis_xcom.ops.airflow_run import AirflowHome
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
    env = home.environ()
    if database == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = server.sqlalchemy_url(server.create_database("gc"))
    run(env, "-m", "airflow", "db", "migrate", timeout=600)
    client = fresh_redis_server.client()

    def run_keys(run_id: str) -> set[str]:
        return value_keys(client, keys.run_tag(PREFIX, "gc_dag", run_id) + ":*")

    runs: dict[int, str] = {}
    run_2_done = 0.0
    cleaned_before = ""
    for day in (1, 2, 3):
        before = value_keys(client, f"{PREFIX}:*")
        run(env, "-m", "airflow", "dags", "test", "gc_dag", f"2024-01-0{day}T00:00:00+00:00")
        made = value_keys(client, f"{PREFIX}:*") - before
        assert len(made) == 4, f"numbers, two doubles, total: {made}"
        (runs[day],) = {coords.run_id for k in made if (coords := keys.parse_key(k)) is not None}
        if day == 1:
            time.sleep(1)
            cleaned_before = datetime.datetime.now(datetime.timezone.utc).isoformat()
        if day == 2:
            run_2_done = time.monotonic()
    # Run 1's rows go as `airflow db clean` deletes them; run 2 goes with its DAG run.
    run(env, "-m", "airflow", "db", "clean", "--clean-before-timestamp", cleaned_before,
        "--tables", "xcom", "--skip-archive", "--yes")  # fmt: skip
    run(env, "-c", DELETE_RUN, runs[2])
    # A row whose value is gone from Redis (expired or evicted).
    gone = sorted(run_keys(runs[3]))[0]
    client.unlink(gone)
    kept = run_keys(runs[3])
    orphans = run_keys(runs[1]) | run_keys(runs[2])
    # The orphans were last read in run 2: older than the grace once it has passed since then.
    time.sleep(max(0.0, run_2_done + GRACE + 1 - time.monotonic()))
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
