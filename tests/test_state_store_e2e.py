"""Airflow's own state store example DAGs through `airflow dags test` with RedisStateStoreBackend, in the
three ways users configure it, against the default MetastoreBackend run in the same module as reference:

* server: ``[state_store] backend`` alone: the state tables stay empty, the values are in Redis;
* worker: ``[workers] state_store_backend`` alone: the rows hold only references, the values are in Redis;
* both: the two together: the tables stay empty and Redis holds the references and the values.

Every mode must end as the metastore does: the same runs and task states (the retry of
example_task_state_store reattaching to the job its first try stored), the same keys, and the values a
task reads back agreeing (random job ids and timestamps aside). The "both" mode runs only the DAGs whose
paths differ from the single modes' (a retry read and asset state): mapped state goes through the same
calls as in the single modes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.redis_process import RedisServer
from tests.state_store.example_runs import (
    BEFORE_3_3_REASON,
    EXAMPLE_FILES,
    EXAMPLES,
    REF_KEY,
    ModeRun,
    async_example_reason,
    decoded,
    finish_modes,
    has_state_store,
    is_reference,
    redis_xcom_settings,
    start_modes,
)

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not has_state_store(), reason=BEFORE_3_3_REASON)]

TASK_DAG = "example_task_state_store"
MAPPED_DAG = "example_task_state_store_mapped"
ASYNC_DAG = "example_task_state_store_async"
PRODUCER = "example_asset_state_store_producer"
CONSUMER = "example_asset_state_store_consumer"
ASSET_NAME = "orders/daily"  # example_asset_state_store's ORDERS
MODES = ("metastore", "server", "worker", "both")


def _dag_ids(mode: str) -> list[str]:
    full = [
        TASK_DAG,
        MAPPED_DAG,
        *([] if async_example_reason() else [ASYNC_DAG]),
        PRODUCER,
        PRODUCER,
        CONSUMER,
    ]
    if mode == "both":
        return [TASK_DAG, PRODUCER, PRODUCER]
    return full


@pytest.fixture(scope="module")
def runs(redis_server: RedisServer) -> Iterator[dict[str, ModeRun]]:
    from redis_xcom.ops.airflow_run import AirflowHome

    base = AirflowHome.create(prefix="redis-xcom-ss-base-")
    finished: list[ModeRun] = []
    try:
        base.add_dags(*(EXAMPLES / name for name in EXAMPLE_FILES))
        base.migrate()
        started = start_modes(
            base, {mode: _dag_ids(mode) for mode in MODES}, redis_server.url, f"ss-e2e-{uuid.uuid4().hex[:8]}"
        )
        finished = finish_modes(started, timeout=400)
        yield {run.mode: run for run in finished}
    finally:
        for run in finished:
            run.home.cleanup()
        base.cleanup()


# --- reading state back as a task would ----------------------------------------------------------


def _backend() -> Any:
    from redis_xcom import RedisStateStoreBackend

    return RedisStateStoreBackend()


def _resolve(run: ModeRun, stored: str | None, asset: bool = False) -> Any:
    """What a task's get returns for a stored JSON text: a reference resolved by the worker-side hook."""
    if stored is None:
        return None
    value = decoded(stored)
    if run.mode in ("worker", "both"):
        assert is_reference(value), f"mode {run.mode}: a stored value is not a reference: {stored!r}"
        backend = _backend()
        if asset:
            return backend.deserialize_asset_state_store_from_ref(value[REF_KEY])
        return backend.deserialize_task_state_store_from_ref(value[REF_KEY])
    return value


def _task_scope(run: ModeRun, dag_id: str, run_id: str, task_id: str, map_index: int) -> Any:
    """The TaskScope the execution API gives the server-side backend: on 3.4, with the task instance's
    region id (a mapped task's instances live in a region of their own)."""
    from airflow.sdk.state import TaskScope

    if not run.home.per_attempt():
        return TaskScope(dag_id, run_id, task_id, map_index)
    rows = run.home.query(
        "SELECT region_id FROM task_instance WHERE dag_id = ? AND run_id = ? AND task_id = ? "
        "AND region_index = ? AND working_set = 1",
        [dag_id, run_id, task_id, map_index],
    )
    raw = rows[0]["region_id"]
    region = uuid.UUID(raw.hex() if isinstance(raw, bytes) else str(raw))
    return TaskScope(dag_id, run_id, task_id, map_index, region_id=region)


def _task_state(
    run: ModeRun, dag_id: str, keys: set[tuple[str, int, str]]
) -> dict[tuple[str, int, str], Any]:
    """(task_id, map_index, key) -> value of the DAG's last run, for each of keys."""
    run_id = run.run_ids(dag_id)[-1]
    found: dict[tuple[str, int, str], Any] = {}
    with redis_xcom_settings(run.home.env["AIRFLOW__REDIS_XCOM__URL"], run.key_prefix):
        if run.mode in ("metastore", "worker"):
            for row in run.task_rows(dag_id):
                if row["run_id"] == run_id:
                    found[(row["task_id"], row["map_index"], row["key"])] = _resolve(run, row["value"])
        else:
            backend = _backend()
            for task_id, map_index, key in keys:
                stored = backend.get(_task_scope(run, dag_id, run_id, task_id, map_index), key)
                if stored is not None:
                    found[(task_id, map_index, key)] = _resolve(run, stored)
    return found


def _asset_state(run: ModeRun, keys: set[str]) -> dict[str, Any]:
    from airflow.sdk.state import AssetScope

    with redis_xcom_settings(run.home.env["AIRFLOW__REDIS_XCOM__URL"], run.key_prefix):
        if run.mode in ("metastore", "worker"):
            return {row["key"]: _resolve(run, row["value"], asset=True) for row in run.asset_rows()}
        backend = _backend()
        scope = AssetScope(asset_id=run.asset_id(ASSET_NAME))
        return {
            k: _resolve(run, stored, asset=True)
            for k in keys
            if (stored := backend.get(scope, k)) is not None
        }


def _reference_keys(reference: ModeRun, dag_id: str) -> set[tuple[str, int, str]]:
    run_id = reference.run_ids(dag_id)[-1]
    return {
        (r["task_id"], r["map_index"], r["key"]) for r in reference.task_rows(dag_id) if r["run_id"] == run_id
    }


def _redis_fields(server: RedisServer, run: ModeRun) -> dict[str, int]:
    """How many state fields the mode's key prefix holds in Redis, by kind: 'r' (what a DB row would
    hold, server side) and 'v' (a value a row refers to, worker side)."""
    client = server.client()
    counts = {"r": 0, "v": 0}
    for key in client.scan_iter(match=f"{run.key_prefix}:state:*", count=500):
        if client.type(key) != b"hash":
            continue
        for name in client.hkeys(key):
            kind = name.decode(errors="replace").split(":", 1)[0]
            counts[kind] = counts.get(kind, 0) + 1
    return counts


# --- the tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_every_example_run_ends_as_under_the_metastore(runs: dict[str, ModeRun], mode: str) -> None:
    run, reference = runs[mode], runs["metastore"]
    assert reference.returncode == 0, reference.describe()
    assert run.returncode == 0, run.describe()
    assert [dag for dag, _ in run.results] == _dag_ids(mode), run.describe()
    for dag_id in set(_dag_ids(mode)):
        assert run.run_states(dag_id) == reference.run_states(dag_id), (dag_id, run.describe())
        assert run.task_outcomes(dag_id) == reference.task_outcomes(dag_id), (dag_id, run.describe())
    # The first try fails after storing the job id; the retry reattaches to it and succeeds.
    assert run.task_outcomes(TASK_DAG) == [{"run_job": ("success", 2)}], run.describe()


@pytest.mark.parametrize("mode", MODES)
def test_task_state_reads_back_as_under_the_metastore(runs: dict[str, ModeRun], mode: str) -> None:
    run, reference = runs[mode], runs["metastore"]
    keys = _reference_keys(reference, TASK_DAG)
    assert {k for _, _, k in keys} == {"job_id", "submitted_at", "status", "result"}
    state = _task_state(run, TASK_DAG, keys)
    assert set(state) == keys, run.describe()
    # The retry reattached: the result names the job id the first try stored.
    assert state[("run_job", -1, "result")]["job_id"] == state[("run_job", -1, "job_id")]
    assert state[("run_job", -1, "status")] == "complete"
    if MAPPED_DAG in _dag_ids(mode):
        keys = _reference_keys(reference, MAPPED_DAG)
        state, expected = _task_state(run, MAPPED_DAG, keys), _task_state(reference, MAPPED_DAG, keys)
        assert set(state) == keys == {("process_table", i, k) for i in range(3) for k in ("status", "result")}
        for map_index in range(3):  # each map index kept its own state
            ours, theirs = (
                state[("process_table", map_index, "result")],
                expected[("process_table", map_index, "result")],
            )
            assert (
                (ours["table"], ours["map_index"])
                == (theirs["table"], theirs["map_index"])
                == (
                    ("orders", "customers", "products")[map_index],
                    map_index,
                )
            )


@pytest.mark.parametrize("mode", MODES)
def test_asset_state_survives_runs_as_under_the_metastore(runs: dict[str, ModeRun], mode: str) -> None:
    """The producer ran twice: its second run read the first one's watermark and counter back."""
    run = runs[mode]
    state = _asset_state(run, {"watermark", "total_runs", "last_run_summary"})
    assert set(state) == {"watermark", "total_runs", "last_run_summary"}, run.describe()
    assert state["total_runs"] == 2
    summary = state["last_run_summary"]
    assert summary["completed_at"] == state["watermark"]
    assert summary["prev_watermark"] != "2026-01-01T00:00:00+00:00", "the second run did not see the first's"


def test_server_side_backend_leaves_the_state_tables_empty(
    runs: dict[str, ModeRun], redis_server: RedisServer
) -> None:
    for mode in ("server", "both"):
        run = runs[mode]
        assert run.task_rows() == [], run.describe()
        assert run.asset_rows() == [], run.describe()
    reference = runs["metastore"]
    rows = len(reference.task_rows()) + len(reference.asset_rows())
    # One server-side field per row the metastore wrote (both: restricted to the DAGs it ran).
    assert _redis_fields(redis_server, runs["server"])["r"] == rows
    assert _redis_fields(redis_server, runs["server"])["v"] == 0


def test_worker_side_backend_leaves_only_references_in_the_rows(
    runs: dict[str, ModeRun], redis_server: RedisServer
) -> None:
    run, reference = runs["worker"], runs["metastore"]
    rows = run.task_rows() + run.asset_rows()
    assert len(run.task_rows()) == len(reference.task_rows())
    assert len(run.asset_rows()) == len(reference.asset_rows())
    for row in rows:
        assert is_reference(decoded(row["value"])), row
    # Each reference names its own value in Redis; nothing is kept server side.
    assert _redis_fields(redis_server, run) == {"r": 0, "v": len(rows)}


def test_both_settings_keep_references_and_values_in_redis(
    runs: dict[str, ModeRun], redis_server: RedisServer
) -> None:

    run = runs["both"]
    counts = _redis_fields(redis_server, run)
    # Every server-side field holds a reference, and every reference has its value.
    assert counts["r"] == counts["v"] > 0, counts
    run_id = run.run_ids(TASK_DAG)[-1]
    with redis_xcom_settings(run.home.env["AIRFLOW__REDIS_XCOM__URL"], run.key_prefix):
        stored = _backend().get(_task_scope(run, TASK_DAG, run_id, "run_job", -1), "job_id")
    assert stored is not None and is_reference(decoded(stored)), stored


@pytest.mark.parametrize("mode", ["server", "worker"])
def test_async_example_checkpoints_as_under_the_metastore(runs: dict[str, ModeRun], mode: str) -> None:
    """aget/aset from an async task: the retry resumes from the checkpoint the first try stored."""
    reason = async_example_reason()
    if reason:
        pytest.skip(reason)
    run, reference = runs[mode], runs["metastore"]
    keys = _reference_keys(reference, ASYNC_DAG)
    assert _task_state(run, ASYNC_DAG, keys) == _task_state(reference, ASYNC_DAG, keys)
    assert (
        run.task_outcomes(ASYNC_DAG)
        == reference.task_outcomes(ASYNC_DAG)
        == [{"ingest_pages": ("success", 2)}]
    )
