"""RedisStateStoreBackend on a real redis-server (or valkey-server): the whole BaseStoreBackend contract."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

pytest.importorskip("airflow.sdk.state", reason="the task and asset state store (AIP-103) needs Airflow 3.3+")

from airflow.sdk.state import AssetScope, TaskScope

import redis_xcom
from redis_xcom import StateValueMissingError, UntrustedReferenceError, ValueTooLargeError
from redis_xcom.state import backend as state_backend
from redis_xcom.state import keys, retention

pytestmark = pytest.mark.integration

SCOPE = TaskScope(dag_id="dag", run_id="manual__2026-01-01T00:00:00+00:00", task_id="task")


@pytest.fixture
def store(real_backend: str) -> Any:
    return redis_xcom.RedisStateStoreBackend()


@pytest.fixture
def client(redis_server: Any) -> Any:
    return redis_server.client()


def soon(seconds: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


def state_keys(client: Any, prefix: str) -> set[str]:
    return {k.decode() for k in client.scan_iter(match=f"{prefix}:state:*", count=1000)}


# -- get / set / delete ---------------------------------------------------------------------------


def test_values_come_back_verbatim_and_an_overwrite_replaces_them(store: Any) -> None:
    assert store.get(SCOPE, "job_id") is None
    store.set(SCOPE, "job_id", '{"id": "j-1", "n": [1, 2.5, null]}')
    assert store.get(SCOPE, "job_id") == '{"id": "j-1", "n": [1, 2.5, null]}'
    store.set(SCOPE, "job_id", '"j-2"')
    assert store.get(SCOPE, "job_id") == '"j-2"'


def test_delete_takes_one_key_and_is_a_no_op_for_a_missing_one(store: Any) -> None:
    store.set(SCOPE, "a", "1")
    store.set(SCOPE, "b", "2")
    store.delete(SCOPE, "a")
    store.delete(SCOPE, "never-set")
    assert store.get(SCOPE, "a") is None
    assert store.get(SCOPE, "b") == "2"


def test_keys_with_any_characters_stay_apart(store: Any) -> None:
    names = ["k", "k:", "r:k", "v:k", "a/b", "{x}", "*", "ünï", " "]
    for i, name in enumerate(names):
        store.set(SCOPE, name, str(i))
    assert [store.get(SCOPE, name) for name in names] == [str(i) for i in range(len(names))]


def test_map_indexes_tasks_runs_and_dags_are_separate_scopes(store: Any) -> None:
    scopes = [
        SCOPE,
        TaskScope("dag", SCOPE.run_id, "task", 0),
        TaskScope("dag", SCOPE.run_id, "task", 1),
        TaskScope("dag", SCOPE.run_id, "other"),
        TaskScope("dag", "another-run", "task"),
        TaskScope("dag/x", SCOPE.run_id, "task"),
    ]
    for i, scope in enumerate(scopes):
        store.set(scope, "k", str(i))
    assert [store.get(scope, "k") for scope in scopes] == [str(i) for i in range(len(scopes))]


# -- clear ----------------------------------------------------------------------------------------


def test_clear_takes_one_map_index_and_all_map_indices_takes_the_task(store: Any) -> None:
    mapped = [TaskScope("dag", "run", "mapped", i) for i in range(-1, 4)]
    neighbour = TaskScope("dag", "run", "neighbour", 1)
    for scope in [*mapped, neighbour]:
        store.set(scope, "k", "1")
        store.set(scope, "k2", "2")
    store.clear(mapped[2])
    assert store.get(mapped[2], "k") is None and store.get(mapped[2], "k2") is None
    assert all(store.get(scope, "k") == "1" for scope in mapped if scope is not mapped[2])
    store.clear(mapped[0], all_map_indices=True)
    assert all(store.get(scope, k) is None for scope in mapped for k in ("k", "k2"))
    assert store.get(neighbour, "k") == "1"


def test_clear_all_map_indices_leaves_no_key_behind(store: Any, client: Any, real_backend: str) -> None:
    for i in range(3):
        store.set(TaskScope("dag", "run", "t", i), "k", "1")
    store.clear(TaskScope("dag", "run", "t"), all_map_indices=True)
    assert state_keys(client, real_backend) == set()


def test_clear_all_map_indices_deletes_only_this_tasks_hashes_even_from_a_tampered_set(
    store: Any, client: Any, real_backend: str
) -> None:
    other = TaskScope("dag", "run", "other")
    store.set(other, "k", "1")
    store.set(SCOPE, "k", "1")
    maps = keys.maps_key(real_backend, keys.scope_of(SCOPE))
    client.sadd(maps, keys.hash_key(real_backend, keys.scope_of(other)))  # someone with Redis access
    store.clear(SCOPE, all_map_indices=True)
    assert store.get(other, "k") == "1"


def test_clear_of_an_asset_takes_its_keys_only_and_ignores_all_map_indices(store: Any) -> None:
    asset, neighbour = AssetScope(asset_id=1), AssetScope(asset_id=2)
    store.set(asset, "watermark", '"2026-01-01"')
    store.set(neighbour, "watermark", '"2025-01-01"')
    store.clear(asset, all_map_indices=True)
    assert store.get(asset, "watermark") is None
    assert store.get(neighbour, "watermark") == '"2025-01-01"'


# -- assets ---------------------------------------------------------------------------------------


def test_asset_scopes_by_id_name_and_uri_are_distinct(store: Any) -> None:
    scopes = [AssetScope(asset_id=1), AssetScope(name="1"), AssetScope(uri="1"), AssetScope(uri="s3://b/k")]
    for i, scope in enumerate(scopes):
        store.set(scope, "k", str(i))
    assert [store.get(scope, "k") for scope in scopes] == ["0", "1", "2", "3"]


def test_asset_state_never_expires_as_with_the_metastore(store: Any, client: Any, real_backend: str) -> None:
    store.set(AssetScope(asset_id=5), "k", "1", expires_at=soon(-60))
    assert store.get(AssetScope(asset_id=5), "k") == "1"
    hash_key = keys.hash_key(real_backend, keys.scope_of(AssetScope(asset_id=5)))
    assert client.pttl(hash_key) > 1000 * 86400 * 365 * 1000  # the far-future expiry of "never"


# -- expiry ---------------------------------------------------------------------------------------


def test_a_value_already_past_its_expiry_is_not_kept_and_replaces_the_old_one(store: Any) -> None:
    store.set(SCOPE, "k", "1")
    store.set(SCOPE, "k", "2", expires_at=soon(-1))
    assert store.get(SCOPE, "k") is None


def test_a_value_is_gone_at_its_expiry_while_a_sibling_lives_on(
    store: Any, client: Any, real_backend: str
) -> None:
    store.set(SCOPE, "short", "1", expires_at=soon(0.3))
    store.set(SCOPE, "long", "2", expires_at=soon(3600))
    hash_key = keys.hash_key(real_backend, keys.scope_of(SCOPE))
    assert 3500_000 < client.pttl(hash_key) <= 3600_000
    assert store.get(SCOPE, "short") == "1"
    time.sleep(0.4)
    assert store.get(SCOPE, "short") is None
    assert store.get(SCOPE, "long") == "2"


def test_redis_expires_a_scope_at_its_longest_lived_value(store: Any, client: Any, real_backend: str) -> None:
    store.set(SCOPE, "a", "1", expires_at=soon(0.2))
    store.set(SCOPE, "b", "1", expires_at=soon(0.3))
    time.sleep(0.45)
    assert state_keys(client, real_backend) == set()


def test_none_means_never_and_an_expiry_is_only_ever_raised(
    store: Any, client: Any, real_backend: str
) -> None:
    store.set(SCOPE, "forever", "1")
    store.set(SCOPE, "brief", "1", expires_at=soon(60))
    hash_key = keys.hash_key(real_backend, keys.scope_of(SCOPE))
    assert client.pexpiretime(hash_key) == retention.FAR_FUTURE_MS


def test_cleanup_drops_expired_values_kept_alive_by_a_sibling(
    store: Any, client: Any, real_backend: str
) -> None:
    store.set(SCOPE, "old", "1", expires_at=soon(0.1))
    store.set(SCOPE, "kept", "2")
    time.sleep(0.15)
    store.cleanup()
    hash_key = keys.hash_key(real_backend, keys.scope_of(SCOPE))
    assert {f.decode() for f in client.hkeys(hash_key)} == {"r:kept"}


# -- bounds ---------------------------------------------------------------------------------------


def test_a_value_above_max_value_bytes_is_refused_naming_the_task_and_key(
    store: Any, xcom_settings: pytest.MonkeyPatch, client: Any, real_backend: str
) -> None:
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__MAX_VALUE_BYTES", "100")
    with pytest.raises(ValueTooLargeError) as raised:
        store.set(TaskScope("my_dag", "my_run", "my_task", 3), "cursor", json.dumps("x" * 200))
    message = str(raised.value)
    for part in ("'my_dag'", "'my_run'", "'my_task'", "map_index=3", "'cursor'", "max_value_bytes = 100"):
        assert part in message
    with pytest.raises(ValueTooLargeError, match=r"asset name='big'.*'blob'"):
        store.serialize_asset_state_store_to_ref(value="x" * 200, key="blob", scope=AssetScope(name="big"))
    assert state_keys(client, real_backend) == set()


def test_large_values_are_compressed_above_the_threshold(
    store: Any, xcom_settings: pytest.MonkeyPatch, client: Any, real_backend: str
) -> None:
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__COMPRESSION", "zlib")
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__COMPRESSION_THRESHOLD", "1024")
    big, small = json.dumps(["abc"] * 10_000), json.dumps("abc")
    store.set(SCOPE, "big", big)
    store.set(SCOPE, "small", small)
    hash_key = keys.hash_key(real_backend, keys.scope_of(SCOPE))
    assert client.hstrlen(hash_key, "r:big") < len(big) / 10
    assert client.hstrlen(hash_key, "r:small") == len(small) + 26
    assert store.get(SCOPE, "big") == big and store.get(SCOPE, "small") == small


# -- async ----------------------------------------------------------------------------------------


def test_async_methods_work_off_the_event_loop(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    threads: set[int] = set()
    read = state_backend.storage.read

    def recording_read(*args: Any) -> Any:
        threads.add(threading.get_ident())
        return read(*args)

    monkeypatch.setattr(state_backend.storage, "read", recording_read)

    async def scenario() -> list[Any]:
        loop_thread = threading.get_ident()
        await store.aset(SCOPE, "k", "1", expires_at=soon(60))
        await store.aset(TaskScope("dag", SCOPE.run_id, "task", 2), "k", "2")
        got = [await store.aget(SCOPE, "k")]
        await store.adelete(SCOPE, "k")
        got.append(await store.aget(SCOPE, "k"))
        await store.aclear(SCOPE, all_map_indices=True)
        got.append(await store.aget(TaskScope("dag", SCOPE.run_id, "task", 2), "k"))
        assert loop_thread not in threads
        return got

    assert asyncio.run(scenario()) == ["1", None, None]


# -- worker side: references ----------------------------------------------------------------------


def test_task_values_round_trip_through_a_deterministic_reference(store: Any) -> None:
    value = {"cursor": 17, "ids": ["a", "b"], "ok": True, "none": None}
    ref = store.serialize_task_state_store_to_ref(value=value, key="cursor", scope=SCOPE)
    again = store.serialize_task_state_store_to_ref(value={"cursor": 18}, key="cursor", scope=SCOPE)
    assert ref == again and ref.startswith("redis-xcom-state://")
    assert store.deserialize_task_state_store_from_ref(ref) == {"cursor": 18}


def test_asset_values_round_trip_through_a_deterministic_reference(store: Any) -> None:
    scope = AssetScope(name="warehouse.orders")
    ref = store.serialize_asset_state_store_to_ref(value="2026-01-01", key="watermark", scope=scope)
    assert ref == store.serialize_asset_state_store_to_ref(value="2026-01-02", key="watermark", scope=scope)
    assert store.deserialize_asset_state_store_from_ref(ref) == "2026-01-02"


def test_delete_and_clear_remove_worker_values_too(store: Any, client: Any, real_backend: str) -> None:
    ref = store.serialize_task_state_store_to_ref(value=1, key="k", scope=SCOPE)
    store.set(SCOPE, "k", json.dumps({"__airflow_state_ref__": ref}))
    store.delete(SCOPE, "k")
    with pytest.raises(StateValueMissingError, match="'k'"):
        store.deserialize_task_state_store_from_ref(ref)
    asset = AssetScope(uri="s3://bucket/table")
    asset_ref = store.serialize_asset_state_store_to_ref(value=1, key="k", scope=asset)
    store.clear(asset)
    with pytest.raises(StateValueMissingError):
        store.deserialize_asset_state_store_from_ref(asset_ref)
    assert state_keys(client, real_backend) == {keys.maps_key(real_backend, keys.scope_of(SCOPE))}


@pytest.mark.parametrize(
    "forged",
    [
        "redis-xcom-state://other-prefix:state:{{t/dag/run/task}}:-1#k",
        "redis-xcom-state://{prefix}:state:{{t/%64ag/run/task}}:-1#k",
        "redis-xcom://{prefix}:{{dag/run}}:task:-1:k",
        "{prefix}:state:{{t/dag/run/task}}:-1#k",
        "not a reference",
    ],
)
def test_forged_references_are_refused_before_anything_is_read(
    store: Any, real_backend: str, forged: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.serialize_task_state_store_to_ref(value="secret", key="k", scope=TaskScope("dag", "run", "task"))
    monkeypatch.setattr(state_backend.storage, "read", lambda *a: pytest.fail("read a forged reference"))
    with pytest.raises(UntrustedReferenceError, match="names no redis-xcom task state value"):
        store.deserialize_task_state_store_from_ref(forged.format(prefix=real_backend))


def test_a_task_reference_is_no_asset_reference_and_back(store: Any) -> None:
    task_ref = store.serialize_task_state_store_to_ref(value=1, key="k", scope=SCOPE)
    asset_ref = store.serialize_asset_state_store_to_ref(value=1, key="k", scope=AssetScope(name="a"))
    with pytest.raises(UntrustedReferenceError):
        store.deserialize_asset_state_store_from_ref(task_ref)
    with pytest.raises(UntrustedReferenceError):
        store.deserialize_task_state_store_from_ref(asset_ref)


class _Accessor:
    def __init__(self, scope: Any) -> None:
        self._scope = scope


class _AssetAccessors:
    def __init__(self, names: list[str]) -> None:
        self._by_name = dict.fromkeys(names)
        self._by_uri: dict[str, Any] = {}


def test_inside_a_task_only_its_own_state_and_its_assets_are_read(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = TaskScope("dag", SCOPE.run_id, "someone_else")
    own_ref = store.serialize_task_state_store_to_ref(value="mine", key="k", scope=SCOPE)
    other_ref = store.serialize_task_state_store_to_ref(value="theirs", key="k", scope=other)
    inlet_ref = store.serialize_asset_state_store_to_ref(value=1, key="k", scope=AssetScope(name="inlet"))
    foreign_ref = store.serialize_asset_state_store_to_ref(value=2, key="k", scope=AssetScope(name="foreign"))
    context = {"task_state_store": _Accessor(SCOPE), "asset_state_store": _AssetAccessors(["inlet"])}
    monkeypatch.setattr(state_backend, "_running_context", lambda: context)
    assert store.deserialize_task_state_store_from_ref(own_ref) == "mine"
    with pytest.raises(UntrustedReferenceError, match=r"'someone_else'.*not the running task's"):
        store.deserialize_task_state_store_from_ref(other_ref)
    assert store.deserialize_asset_state_store_from_ref(inlet_ref) == 1
    with pytest.raises(UntrustedReferenceError, match="none of the running task's inlets or outlets"):
        store.deserialize_asset_state_store_from_ref(foreign_ref)


# -- as Airflow uses it ---------------------------------------------------------------------------


def test_airflow_accepts_the_class_as_its_server_side_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.state import resolve_state_backend

    monkeypatch.setenv("AIRFLOW__STATE_STORE__BACKEND", "redis_xcom.RedisStateStoreBackend")
    assert resolve_state_backend() is redis_xcom.RedisStateStoreBackend


def test_airflows_worker_accessor_keeps_only_a_reference_in_the_row(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TaskStateStoreAccessor with [workers] state_store_backend: set, get, the clear of clear_on_success."""
    from airflow.sdk.execution_time import comms, context, task_runner

    rows: dict[str, Any] = {}

    class Supervisor:
        def send(self, msg: Any) -> Any:
            if isinstance(msg, comms.SetTaskStateStore):
                rows[msg.key] = msg.value
            elif isinstance(msg, comms.GetTaskStateStore):
                return comms.TaskStateStoreResult(value=rows[msg.key])
            return None

    monkeypatch.setenv("AIRFLOW__WORKERS__STATE_STORE_BACKEND", "redis_xcom.RedisStateStoreBackend")
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", Supervisor(), raising=False)
    context._get_worker_state_store_backend.cache_clear()
    try:
        accessor = context.TaskStateStoreAccessor(uuid.uuid4(), SCOPE)
        accessor.set("job", {"id": "j-1"})
        assert set(rows["job"]) == {"__airflow_state_ref__"}
        assert accessor.get("job") == {"id": "j-1"}
        accessor._clear_backend_only()  # what the task runner calls on success with clear_on_success
        with pytest.raises(StateValueMissingError):
            accessor.get("job")
    finally:
        context._get_worker_state_store_backend.cache_clear()


def test_clear_on_success_clears_exactly_the_succeeded_map_index(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The execution API clears the succeeded task instance's scope through [state_store] backend."""
    from airflow import state

    monkeypatch.setenv("AIRFLOW__STATE_STORE__BACKEND", "redis_xcom.RedisStateStoreBackend")
    monkeypatch.setattr(state, "_backend_instance", None)
    for i in (0, 1):
        store.set(TaskScope("dag", "run", "mapped", i), "k", "1")
    state.get_state_backend().clear(TaskScope("dag", "run", "mapped", 1))  # as in ti_update_state
    assert store.get(TaskScope("dag", "run", "mapped", 0), "k") == "1"
    assert store.get(TaskScope("dag", "run", "mapped", 1), "k") is None


def test_importing_redis_xcom_does_not_load_the_state_store() -> None:
    code = "import sys, redis_xcom; print('airflow.sdk.state' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_before_airflow_33_the_class_says_what_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "airflow.sdk.state", None)  # as if airflow.sdk.state did not exist
    with pytest.raises(ImportError, match=r"needs Airflow 3\.3\+"):
        redis_xcom.RedisStateStoreBackend  # noqa: B018


def test_airflow_34_regions_are_scopes_of_their_own(store: Any) -> None:
    """3.4: a task inside a region (a loop iteration) keys its state by region as the metastore does."""
    if "region_id" not in TaskScope.__dataclass_fields__:
        pytest.skip("TaskScope has no region_id before Airflow 3.4")
    region = uuid.uuid4()
    plain, in_region = TaskScope("dag", "run", "task", 0), TaskScope("dag", "run", "task", 0, region)
    store.set(plain, "k", '"plain"')
    store.set(in_region, "k", '"region"')
    store.set(TaskScope("dag", "run", "task", 1, region), "k", '"region 1"')
    assert (store.get(plain, "k"), store.get(in_region, "k")) == ('"plain"', '"region"')
    ref = store.serialize_task_state_store_to_ref(value=1, key="w", scope=in_region)
    assert store.deserialize_task_state_store_from_ref(ref) == 1
    store.clear(in_region, all_map_indices=True)  # every index of the region, not the plain task's
    assert (
        store.get(in_region, "k") is None
        and store.get(TaskScope("dag", "run", "task", 1, region), "k") is None
    )
    assert store.get(plain, "k") == '"plain"'
