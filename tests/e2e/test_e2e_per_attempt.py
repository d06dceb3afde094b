"""Airflow 3.4: every attempt and every loop iteration is a task instance of its own.

Through `airflow dags test`: a task whose two tries push the same key (dags_per_attempt/e2e_attempts.py),
loops with a consumer pulling its own iteration's value and a mapped body (e2e_loops.py), and
Airflow's own example_task_loops.py, whose values must be those of the default backend. Then gc and
clear over the attempts' history.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from redis_xcom.ops.airflow_run import AirflowHome, CommandResult
from redis_xcom.rows import XComRow
from tests.airflow_limits import PER_ATTEMPT_REASON, per_attempt_xcoms
from tests.dags_test_many import dags_test_many
from tests.e2e.conftest import E2E, describe
from tests.xcom_checks import AIRFLOW_OWN_KEY_PREFIX

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not per_attempt_xcoms(), reason=PER_ATTEMPT_REASON)]

DAGS = Path(__file__).parent / "dags_per_attempt"
EXAMPLE_LOOP_DAGS = ("refine_estimate", "fixed_task_loop", "mapped_task_loop", "partial_override_loop")


def example_loops_file() -> Path:
    import airflow

    return Path(airflow.__file__).parent / "example_dags" / "example_task_loops.py"


@pytest.fixture(scope="module")
def runs(e2e: E2E) -> dict[str, tuple[str, CommandResult]]:
    e2e.home.add_dags(*sorted(DAGS.glob("*.py")), example_loops_file())
    dag_ids = ("e2e_attempts", "e2e_loop_consumer", "e2e_loop_mapped", *EXAMPLE_LOOP_DAGS)
    done = {}
    # One interpreter for all seven `dags test` runs: Airflow's import is most of a short run's time.
    for dag_id, result in zip(dag_ids, dags_test_many(e2e.home, dag_ids, timeout=900), strict=True):
        assert result.ok, f"{dag_id}: {describe(result)}"
        done[dag_id] = (e2e.home.latest_run(dag_id).run_id, result)
    return done


def values_by_task(rows: list[XComRow], load: Any) -> dict[tuple[str, int, str], list[str]]:
    """(task, map index, key) -> the values of every task instance there, as sorted JSON texts."""
    found: dict[tuple[str, int, str], list[str]] = defaultdict(list)
    for row in rows:
        value = row.value if row.key.startswith(AIRFLOW_OWN_KEY_PREFIX) else load(row)
        found[(row.task_id, row.map_index, row.key)].append(json.dumps(value, sort_keys=True))
    return {place: sorted(values) for place, values in found.items()}


def test_each_attempt_row_resolves_to_that_attempts_own_value(
    e2e: E2E, runs: dict[str, tuple[str, CommandResult]]
) -> None:
    run_id, result = runs["e2e_attempts"]
    rows = e2e.assert_db_and_redis_agree("e2e_attempts", run_id)
    flaky = {(r.key, r.try_number): e2e.value(r) for r in rows if r.task_id == "flaky"}
    assert flaky == {
        ("k", 1): "try1",
        ("partial", 1): {"written_by": "try1"},
        ("k", 2): "try2",
        ("return_value", 2): {"done_by": "try2"},
    }, describe(result)
    (read,) = [e2e.value(r) for r in rows if r.task_id == "read"]
    assert read == {"k": "try2", "returned": {"done_by": "try2"}}
    # Every row names its own task instance in its key: nothing is shared between attempts.
    attempts = {t.id: t.try_number for t in e2e.home.task_instances("e2e_attempts", run_id, attempts=True)}
    for row in rows:
        assert row.value.endswith(":ti-" + row.task_instance_id.replace("-", "")), row  # type: ignore[union-attr]
        assert attempts[row.task_instance_id] == row.try_number


def test_every_loop_iteration_keeps_its_own_values(
    e2e: E2E, runs: dict[str, tuple[str, CommandResult]]
) -> None:
    run_id, result = runs["e2e_loop_consumer"]
    rows = e2e.assert_db_and_redis_agree("e2e_loop_consumer", run_id)
    produced = {r.map_index: e2e.value(r) for r in rows if r.task_id == "body.produce"}
    consumed = {r.map_index: e2e.value(r) for r in rows if r.task_id == "body.consume"}
    assert {i: v["iteration"] for i, v in produced.items()} == {0: 0, 1: 1, 2: 2}, describe(result)
    assert consumed == {i: {"iteration": i, "length": 100 * (i + 1)} for i in range(3)}

    run_id, result = runs["e2e_loop_mapped"]
    rows = e2e.assert_db_and_redis_agree("e2e_loop_mapped", run_id)
    squares = sorted(
        (v["iteration"], r.map_index, v["value"], v["square"])
        for r in rows
        if r.task_id == "batch.square" and (v := e2e.value(r))
    )
    # Two iterations of three mapped instances each, all with map indexes 0 to 2.
    assert squares == [(it, i, it * 10 + i, (it * 10 + i) ** 2) for it in (0, 1) for i in range(3)]


@pytest.fixture(scope="module")
def default_backend_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowHome]:
    home = AirflowHome(tmp_path_factory.mktemp("default-backend"), env={})
    home.add_dags(example_loops_file())
    home.migrate()
    yield home


def test_airflows_example_loops_store_what_the_default_backend_stores(
    e2e: E2E, runs: dict[str, tuple[str, CommandResult]], default_backend_home: AirflowHome
) -> None:
    defaults = dags_test_many(default_backend_home, EXAMPLE_LOOP_DAGS, timeout=600)
    for dag_id, result in zip(EXAMPLE_LOOP_DAGS, defaults, strict=True):
        run_id, _ = runs[dag_id]
        ours = values_by_task(e2e.assert_db_and_redis_agree(dag_id, run_id), e2e.value)
        assert result.ok, f"{dag_id}: {describe(result)}"
        default_run = default_backend_home.latest_run(dag_id).run_id
        theirs = values_by_task(default_backend_home.xcoms(dag_id, default_run), lambda row: row.value)
        assert ours and ours == theirs, dag_id
        states = e2e.home.task_states(dag_id, run_id)
        assert states == default_backend_home.task_states(dag_id, default_run), dag_id


def redis_xcom(e2e: E2E, *args: str) -> dict[str, Any]:
    env = e2e.home.environ()
    done = subprocess.run(
        [sys.executable, "-m", "redis_xcom", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and done.stdout.strip(), done.stderr[-3000:]
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_gc_keeps_every_attempts_history_and_clear_takes_all_of_a_run(
    e2e: E2E, runs: dict[str, tuple[str, CommandResult]]
) -> None:
    run_id, _ = runs["e2e_attempts"]
    partial = [r for r in e2e.home.xcoms("e2e_attempts", run_id) if r.key == "partial"]
    report = redis_xcom(e2e, "gc", "--dry-run", "--grace", "0")
    assert report["to_delete"] == 0, f"gc would delete what a row refers to: {report['sample_keys']}"
    assert report["referenced"] == report["examined"] >= 5
    assert e2e.value(partial[0]) == {"written_by": "try1"}, "the failed try's value is history, kept"

    other_runs = {dag: e2e.run_keys(dag, rid) for dag, (rid, _) in runs.items() if dag != "e2e_attempts"}
    report = redis_xcom(e2e, "clear", "--dag-id", "e2e_attempts", "--run-id", run_id, "--yes")
    assert report["deleted"] == 5, report  # both tries' k, try 1's partial, try 2's and read's return
    assert e2e.run_keys("e2e_attempts", run_id) == set()
    assert {
        dag: e2e.run_keys(dag, rid) for dag, (rid, _) in runs.items() if dag != "e2e_attempts"
    } == other_runs
