"""The state store through Sentinel, and as the least-privilege ACL user of docs/state-store.md."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("airflow.sdk.state", reason="the task and asset state store (AIP-103) needs Airflow 3.3+")

from airflow.sdk.state import AssetScope, TaskScope

import redis_xcom
from tests.redis_process import MISSING_REASON, REDIS_SERVER, RedisServer
from tests.topologies.acl import acl_rule, add_user, denials
from tests.topologies.contract import backend_env
from tests.topologies.sentinel import SENTINEL_PASSWORD, SentinelDeployment

pytestmark = [
    pytest.mark.integration,
    pytest.mark.topology,
    pytest.mark.skipif(REDIS_SERVER is None, reason=MISSING_REASON),
]
# What docs/state-store.md adds to the least-privilege rule of docs/topologies.md.
STATE_COMMANDS = ("+hset", "+hget", "+hdel", "+hscan", "+pexpireat")


def exercise(store: Any) -> None:
    """Every call of the contract once, checking what comes back."""
    scope, mapped = TaskScope("dag", "run", "task"), TaskScope("dag", "run", "task", 3)
    store.set(scope, "k", '"v"')
    store.set(mapped, "k", '"m"')
    assert (store.get(scope, "k"), store.get(mapped, "k")) == ('"v"', '"m"')
    ref = store.serialize_task_state_store_to_ref(value={"big": "x" * 100_000}, key="w", scope=scope)
    assert store.deserialize_task_state_store_from_ref(ref) == {"big": "x" * 100_000}
    asset_ref = store.serialize_asset_state_store_to_ref(value=1, key="w", scope=AssetScope(name="a"))
    assert store.deserialize_asset_state_store_from_ref(asset_ref) == 1
    store.delete(scope, "k")
    store.clear(mapped, all_map_indices=True)
    store.clear(AssetScope(name="a"))
    store.cleanup()
    assert store.get(scope, "k") is None and store.get(mapped, "k") is None


@pytest.fixture
def deployment() -> Iterator[SentinelDeployment]:
    with SentinelDeployment() as started:
        yield started


def test_the_state_store_through_sentinel(
    deployment: SentinelDeployment, xcom_settings: pytest.MonkeyPatch
) -> None:
    env = backend_env(deployment.url(), "statesentinel", sentinel_password=SENTINEL_PASSWORD)
    for name, value in env.items():
        xcom_settings.setenv(name, value)
    store = redis_xcom.RedisStateStoreBackend()
    exercise(store)
    store.set(TaskScope("dag", "run", "task"), "after", "1")
    # Written to the master the Sentinels name.
    assert deployment.current_master().client().exists("statesentinel:state:{t/dag/run/task}:-1") == 1


def test_the_state_store_as_the_documented_acl_user(
    fresh_redis_server: RedisServer, xcom_settings: pytest.MonkeyPatch
) -> None:
    admin = fresh_redis_server.client()
    add_user(admin, "state", [*acl_rule("stateacl", "pw"), *STATE_COMMANDS])
    admin.acl_log_reset()
    url = f"redis://state:pw@127.0.0.1:{fresh_redis_server.port}/0"
    for name, value in backend_env(url, "stateacl", lua_scripts="false").items():
        xcom_settings.setenv(name, value)
    exercise(redis_xcom.RedisStateStoreBackend())
    assert denials(admin) == []
