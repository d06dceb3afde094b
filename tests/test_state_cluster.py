"""RedisStateStoreBackend on a real Redis Cluster: a scope's keys in one slot, clear in one place."""

from __future__ import annotations

import re
from typing import Any

import pytest
from redis.cluster import key_slot

pytest.importorskip("airflow.sdk.state", reason="the task and asset state store (AIP-103) needs Airflow 3.3+")

from airflow.sdk.state import AssetScope, TaskScope

import redis_xcom
from tests.cluster_process import RedisClusterProcesses, use_cluster

pytestmark = [pytest.mark.integration, pytest.mark.topology]


@pytest.fixture
def prefix(
    redis_cluster: RedisClusterProcesses, xcom_settings: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> str:
    name = "t-" + re.sub(r"[^A-Za-z0-9_.-]", "-", request.node.name)[:80]
    use_cluster(redis_cluster, xcom_settings)
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__KEY_PREFIX", name)
    return name


def state_keys(cluster: RedisClusterProcesses, prefix: str) -> set[str]:
    client = cluster.client()
    return {k.decode() for k in client.scan_iter(match=f"{prefix}:state:*", target_nodes=client.PRIMARIES)}


def test_clear_on_a_cluster_takes_every_map_index_from_the_tasks_one_slot(
    prefix: str, redis_cluster: RedisClusterProcesses
) -> None:
    store: Any = redis_xcom.RedisStateStoreBackend()
    tasks = [TaskScope("dag", "run", f"task{t}", i) for t in range(4) for i in range(-1, 3)]
    for scope in tasks:
        store.set(scope, "k", f'"{scope.task_id}/{scope.map_index}"')
        store.serialize_task_state_store_to_ref(value=1, key="w", scope=scope)
    assert [store.get(scope, "k") for scope in tasks] == [f'"{s.task_id}/{s.map_index}"' for s in tasks]
    by_task: dict[str, set[int]] = {}
    for key in state_keys(redis_cluster, prefix):
        by_task.setdefault(key.split("/")[3].split("}")[0], set()).add(key_slot(key.encode()))
    assert all(len(slots) == 1 for slots in by_task.values())
    assert len({slot for slots in by_task.values() for slot in slots}) > 1  # tasks spread over the cluster
    store.clear(TaskScope("dag", "run", "task0", 1))
    assert store.get(TaskScope("dag", "run", "task0", 1), "k") is None
    assert store.get(TaskScope("dag", "run", "task0", 0), "k") is not None
    store.clear(TaskScope("dag", "run", "task0"), all_map_indices=True)
    assert all(store.get(s, "k") is None for s in tasks if s.task_id == "task0")
    assert all(store.get(s, "k") is not None for s in tasks if s.task_id != "task0")
    assert not any("task0" in key for key in state_keys(redis_cluster, prefix))


def test_assets_and_references_on_a_cluster(prefix: str) -> None:
    store: Any = redis_xcom.RedisStateStoreBackend()
    ref = store.serialize_asset_state_store_to_ref(value={"w": 1}, key="wm", scope=AssetScope(uri="s3://b/k"))
    assert store.deserialize_asset_state_store_from_ref(ref) == {"w": 1}
    store.set(AssetScope(asset_id=3), "wm", "1")
    store.clear(AssetScope(asset_id=3))
    assert store.get(AssetScope(asset_id=3), "wm") is None
