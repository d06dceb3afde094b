"""`redis-xcom stats`, `clear --state`, `gc --state` and `doctor` on state store keys (real redis-server)."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

pytest.importorskip("airflow.sdk.state", reason="the task and asset state store (AIP-103) needs Airflow 3.3+")

from airflow.sdk.state import AssetScope, TaskScope

import redis_xcom
from redis_xcom.ops import cli
from redis_xcom.ops.output import Output
from redis_xcom.ops.state_gc import run_state_gc
from redis_xcom.state import keys
from redis_xcom.state.keys import StateScope
from tests.redis_process import RedisServer

pytestmark = pytest.mark.integration


@pytest.fixture
def store(fresh_redis_server: RedisServer, xcom_settings: pytest.MonkeyPatch) -> Any:
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__URL", fresh_redis_server.url)
    return redis_xcom.RedisStateStoreBackend()


def test_stats_counts_state_scopes_and_entries_by_dag(store: Any, capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(3):
        store.set(TaskScope("etl", "run", f"t{i}"), "watermark", '"2026"')
    store.serialize_task_state_store_to_ref(value=1, key="job", scope=TaskScope("etl", "run", "t0"))
    store.set(AssetScope(asset_id=1), "cursor", "1")
    assert cli.main(["stats", "--json"]) == 0
    state = json.loads(capsys.readouterr().out)["state_store"]
    assert state == {
        "task_scopes": 3,
        "asset_scopes": 1,
        "server_side_entries": 4,
        "worker_side_values": 1,
        "entries_by_dag": {"etl": 4},
    }
    assert cli.main(["stats"]) == 0
    assert "State store: 3 task scopes, 1 asset scopes; 4 server-side entries, 1 worker-side values" in (
        capsys.readouterr().out
    )


def test_clear_state_takes_exactly_the_selection(store: Any, capsys: pytest.CaptureFixture[str]) -> None:
    scopes = [
        TaskScope(d, r, t, m)
        for d in ("etl", "etl2")
        for r in ("r1", "r2")
        for t in ("a", "b")
        for m in (-1, 1)
    ]
    for scope in scopes:
        store.set(scope, "k", "1")
        store.set(scope, "k2", "2")
    assert cli.main(["clear", "--state", "--dag-id", "etl", "--task-id", "a", "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["task_scopes"] == 4
    assert all(store.get(scope, "k") == "1" for scope in scopes)
    assert cli.main(["clear", "--state", "--dag-id", "etl", "--run-id", "r1", "--task-id", "a", "--yes"]) == 0
    gone = {s for s in scopes if (s.dag_id, s.run_id, s.task_id) == ("etl", "r1", "a")}
    assert all((store.get(s, "k") is None) == (s in gone) for s in scopes)
    assert cli.main(["clear", "--state", "--dag-id", "etl2", "--map-index", "1", "--key", "k", "--yes"]) == 0
    for scope in scopes:
        took_key = scope.dag_id == "etl2" and scope.map_index == 1
        assert (store.get(scope, "k") is None) == (took_key or scope in gone)
        assert (store.get(scope, "k2") is None) == (scope in gone)


def test_clear_state_of_one_asset_takes_that_scope_only(
    store: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # The API server keeps an asset's state by id; tasks keep it by name or URI (worker side).
    by_id, by_name = AssetScope(asset_id=7), AssetScope(name="orders*[1]")
    other_id, by_uri = AssetScope(asset_id=8), AssetScope(uri="s3://bucket/orders")
    globbed = AssetScope(name="orders-all1")  # what orders*[1] would match as a pattern
    task = TaskScope("etl", "r1", "a")
    for scope in (by_id, by_name, other_id, by_uri, globbed, task):
        store.set(scope, "cursor", "1")
        store.set(scope, "page", "2")
    assert cli.main(["clear", "--state", "--asset-id", "7", "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["asset_scopes"] == 1
    assert store.get(by_id, "cursor") == "1"
    assert cli.main(["clear", "--state", "--asset-id", "7", "--yes"]) == 0
    assert "Deleted 1 asset state scopes." in capsys.readouterr().out
    # A name holding glob characters takes that asset only, never one the pattern would match.
    assert cli.main(["clear", "--state", "--asset-name", "orders*[1]", "--key", "page", "--yes"]) == 0
    assert [store.get(by_id, "cursor"), store.get(by_name, "cursor"), store.get(by_name, "page")] == [
        None,
        "1",
        None,
    ]
    kept = (other_id, by_uri, globbed, task)
    assert all(store.get(s, k) is not None for s in kept for k in ("cursor", "page"))
    assert cli.main(["clear", "--state", "--asset-uri", "s3://bucket/orders", "--yes"]) == 0
    assert store.get(by_uri, "cursor") is None and store.get(other_id, "cursor") == "1"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["clear", "--yes"], "--dag-id is required"),
        (["clear", "--state", "--yes"], "--asset-id, --asset-name or --asset-uri"),
        (["clear", "--asset-id", "7", "--yes"], "add --state"),
        (["clear", "--state", "--asset-id", "7", "--dag-id", "etl", "--yes"], "give one of them"),
    ],
)
def test_clear_without_a_dag_or_an_asset_is_refused_and_says_what_to_give(
    store: Any, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    store.set(AssetScope(asset_id=7), "cursor", "1")
    store.set(TaskScope("etl", "r1", "a"), "cursor", "1")
    assert cli.main(args) == 2
    assert says in capsys.readouterr().err
    assert (
        store.get(AssetScope(asset_id=7), "cursor") == store.get(TaskScope("etl", "r1", "a"), "cursor") == "1"
    )


class FakeRows:
    """State rows that refer to the references in `held`."""

    def __init__(self, held: set[str], asset_ids: dict[str, list[int]] | None = None) -> None:
        self.held = held
        self.ids = asset_ids or {}

    def asset_ids(self, scope: StateScope) -> list[int]:
        return self.ids.get(scope.asset, [])

    def references(self, wanted: Sequence[tuple[StateScope, str]], prefix: str) -> set[str]:
        return {ref for scope, key in wanted if (ref := keys.to_reference(prefix, scope, key)) in self.held}


def test_gc_state_reclaims_values_whose_rows_are_gone_after_the_grace(store: Any) -> None:
    kept = store.serialize_task_state_store_to_ref(value=1, key="kept", scope=TaskScope("d", "r", "t"))
    orphan = store.serialize_task_state_store_to_ref(value=2, key="orphan", scope=TaskScope("d", "r", "t"))
    in_redis = store.serialize_asset_state_store_to_ref(value=3, key="k", scope=AssetScope(name="a"))
    task_in_redis = store.serialize_task_state_store_to_ref(value=4, key="k", scope=TaskScope("d", "r", "t"))
    # Rows in Redis (the server-side backend is ours too; an asset's keyed by its id) keep values alive.
    store.set(AssetScope(asset_id=7), "k", json.dumps({"__airflow_state_ref__": in_redis}))
    store.set(TaskScope("d", "r", "t"), "k", json.dumps({"__airflow_state_ref__": task_in_redis}))
    expired_row = store.serialize_task_state_store_to_ref(value=5, key="gone", scope=TaskScope("d", "r", "t"))
    store.set(
        TaskScope("d", "r", "t"),
        "gone",
        json.dumps({"__airflow_state_ref__": expired_row}),
        expires_at=datetime.now(timezone.utc) + timedelta(milliseconds=5),
    )
    rows = FakeRows({kept}, {"a": [7]})
    out = Output(True)
    assert run_state_gc(grace=3600, dry_run=False, yes=True, force=True, out=out, rows=rows) == 0
    assert store.deserialize_task_state_store_from_ref(orphan) == 2  # within the grace
    time.sleep(0.01)
    assert run_state_gc(grace=0, dry_run=True, yes=True, force=True, out=out, rows=rows) == 0
    assert store.deserialize_task_state_store_from_ref(orphan) == 2  # a dry run
    assert run_state_gc(grace=0, dry_run=False, yes=True, force=False, out=out, rows=rows) == 0
    assert store.deserialize_task_state_store_from_ref(kept) == 1
    assert store.deserialize_asset_state_store_from_ref(in_redis) == 3
    assert store.deserialize_task_state_store_from_ref(task_in_redis) == 4
    with pytest.raises(redis_xcom.StateValueMissingError):
        store.deserialize_task_state_store_from_ref(orphan)
    with pytest.raises(redis_xcom.StateValueMissingError):  # its row in Redis had expired
        store.deserialize_task_state_store_from_ref(expired_row)


def test_gc_state_stops_when_most_values_would_go(store: Any, capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(3):
        store.serialize_task_state_store_to_ref(value=i, key=f"k{i}", scope=TaskScope("d", "r", "t"))
    out = Output(True)
    assert run_state_gc(grace=0, dry_run=False, yes=True, force=False, out=out, rows=FakeRows(set())) == 1
    assert json.loads(capsys.readouterr().out)["stopped_by_guard"] is True
    assert (
        store.deserialize_task_state_store_from_ref(
            keys.to_reference("xcom", keys.scope_of(TaskScope("d", "r", "t")), "k0")
        )
        == 0
    )


@pytest.mark.parametrize(
    ("server", "workers", "said"),
    [
        ("redis_xcom.RedisStateStoreBackend", "", "the server-side backend is in effect"),
        ("", "redis_xcom.RedisStateStoreBackend", "the worker-side backend is in effect"),
        ("redis_xcom.RedisStateStoreBackend", "redis_xcom.RedisStateStoreBackend", "both in effect"),
    ],
)
def test_doctor_says_which_state_store_setting_is_in_effect(
    store: Any,
    xcom_settings: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    server: str,
    workers: str,
    said: str,
) -> None:
    if server:
        xcom_settings.setenv("AIRFLOW__STATE_STORE__BACKEND", server)
    if workers:
        xcom_settings.setenv("AIRFLOW__WORKERS__STATE_STORE_BACKEND", workers)
    cli.main(["doctor", "--json"])
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["state_store"]["status"] == "ok" and said in checks["state_store"]["detail"]
    assert checks["state_commands"]["status"] == "ok"


def test_airflow_state_rows_keep_only_references_to_their_own_scope(tmp_path: Any) -> None:
    """The lookups of gc --state on Airflow's own models (the three tables, in a SQLite file)."""
    from contextlib import contextmanager

    from airflow.models.asset import AssetModel
    from airflow.models.asset_state_store import AssetStateStoreModel
    from airflow.models.dagrun import DagRun  # noqa: F401  (the dag_run table the rows' foreign key names)
    from airflow.models.task_state_store import TaskStateStoreModel
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from redis_xcom.ops.state_gc import AirflowStateRows

    engine = create_engine(f"sqlite:///{tmp_path / 'airflow.db'}")
    tables = [m.__table__ for m in (TaskStateStoreModel, AssetStateStoreModel, AssetModel)]
    TaskStateStoreModel.metadata.create_all(engine, tables=tables)

    def wrapped(scope: StateScope, key: str) -> str:
        return json.dumps({"__airflow_state_ref__": keys.to_reference("pre", scope, key)})

    own, other = keys.scope_of(TaskScope("d", "r", "t", 2)), keys.scope_of(TaskScope("d", "r", "other"))
    named = StateScope("a", asset_kind="name", asset="orders")
    with Session(engine) as session:
        index = "region_index" if hasattr(TaskStateStoreModel, "region_index") else "map_index"  # 3.4's name
        task_row = {"dag_run_id": 1, "dag_id": "d", "run_id": "r", "task_id": "t", index: 2}
        session.add(TaskStateStoreModel(**task_row, key="mine", value=wrapped(own, "mine")))
        # A row edited to name another task's value keeps nothing alive.
        session.add(TaskStateStoreModel(**task_row, key="forged", value=wrapped(other, "forged")))
        session.add(AssetModel(id=7, name="orders", uri="s3://b/orders", group="asset"))
        session.add(AssetStateStoreModel(asset_id=7, key="wm", value=wrapped(named, "wm")))
        session.commit()

    @contextmanager
    def session_factory() -> Any:
        with Session(engine) as session:
            yield session

    rows = AirflowStateRows(session_factory)
    wanted = [(own, "mine"), (other, "forged"), (own, "forged"), (named, "wm")]
    assert rows.references(wanted, "pre") == {
        keys.to_reference("pre", own, "mine"),
        keys.to_reference("pre", named, "wm"),
    }
    assert rows.asset_ids(named) == [7]
    assert rows.asset_ids(StateScope("a", asset_kind="uri", asset="s3://b/orders")) == [7]


def test_two_assets_are_refused_where_argparse_cannot_refuse_them(
    store: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # `airflow redis-xcom clear` rebuilds the options without their exclusive group.
    store.set(AssetScope(asset_id=7), "cursor", "1")
    given = {"asset_id": 7, "asset_name": "orders", "asset_uri": None, "dag_id": None, "run_id": None}
    given |= {"task_id": None, "map_index": None, "key": None, "dry_run": False, "yes": True}
    args = argparse.Namespace(command="clear", json=False, state=True, **given)
    assert cli.run(args) == 2
    assert "--asset-id and --asset-name each name an asset" in capsys.readouterr().err
    assert store.get(AssetScope(asset_id=7), "cursor") == "1"
