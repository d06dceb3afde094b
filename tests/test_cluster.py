"""The backend on a real Redis Cluster (3 masters, 1 replica each), through redis+cluster:// URLs.

The first part runs the single-node contract again on the cluster: the tests of test_backend,
test_store and test_reliability_keys imported here find `fake_redis`, `redis_server`, `real_backend`
and `store` redefined below as the cluster. The second part is what only a cluster has: runs spread
over masters, one round trip per node, a DAG-level clear over every primary, WAIT on a replica.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster, key_slot

from redis_xcom import CorruptPayloadError, ExclusiveRedisXCom, ReplicationError
from redis_xcom.keys import parse_key
from redis_xcom.runtime import get_runtime, reset_runtime
from redis_xcom.storage.store import RedisStore
from tests.cluster_process import RedisClusterProcesses, flush_cluster, use_cluster
from tests.redis_process import RedisServer
from tests.test_backend import (  # noqa: F401  the single-node contract, collected again here
    test_a_retry_overwrites_the_same_key_instead_of_orphaning,
    test_branch_decisions_stay_inline_for_the_scheduler,
    test_clear_deletes_exactly_its_selection,
    test_clear_never_touches_keys_of_another_prefix,
    test_clear_of_a_dag_spares_every_other_dag,
    test_corrupt_value_raises_a_clear_error_naming_the_xcom,
    test_deserialize_many_reads_every_value_in_one_round_trip,
    test_deserialize_many_reports_the_missing_item,
    test_deserialize_many_serves_a_repeated_reference_every_time,
    test_each_run_keeps_an_index_of_its_keys_that_outlives_them,
    test_every_value_gets_the_configured_ttl,
    test_large_values_are_indexed_too,
    test_missing_value_raises_expired_error_with_coordinates_ttl_and_advice,
    test_purge_unlinks_exactly_the_referenced_key,
    test_push_stores_value_in_redis_and_returns_a_short_reference,
    test_run_level_clear_reads_the_index_and_never_scans_the_keyspace,
    test_values_above_max_value_bytes_are_refused_before_writing,
)
from tests.test_reliability_keys import (  # noqa: F401
    test_clear_on_real_redis_over_adversarial_ids_takes_exactly_the_selection_with_its_chunks,
)

# Not the frozen-server and proto-max-bulk-len ones (one node's), nor one naming the node's port.
from tests.test_store import (  # noqa: F401  with their fixtures ns and small_chunks
    ns,
    small_chunks,
    test_altered_chunk_is_caught_by_the_envelope_checksum,
    test_backend_round_trips_chunked_values_and_purges_their_chunks,
    test_big_value_is_chunked_under_one_hash_tag_with_one_ttl,
    test_clear_removes_chunked_values_and_counts_xcoms,
    test_exact_chunk_size_boundaries_round_trip,
    test_foreign_list_is_an_error_never_data,
    test_get_many_mixes_plain_chunked_and_missing_in_order,
    test_large_push_sends_the_value_without_copying_it,
    test_rewrites_leave_no_orphan_chunks,
    test_small_value_is_one_plain_string,
    test_unlink_counts_values_chunked_or_not,
    test_value_given_as_buffers_is_stored_as_their_concatenation,
)
from tests.xcom_calls import pull, push, redis_key, value_keys

pytestmark = [pytest.mark.integration, pytest.mark.topology]


class _ClusterAsServer:
    """What the imported tests use of a RedisServer (url, client()), answered by the cluster."""

    def __init__(self, cluster: RedisClusterProcesses) -> None:
        self.cluster = cluster
        self.url = cluster.url

    def client(self) -> RedisCluster:
        return self.cluster.client()


@pytest.fixture
def fake_redis(redis_cluster: RedisClusterProcesses, xcom_settings: pytest.MonkeyPatch) -> RedisCluster:
    """test_backend's client, here the cluster the backend writes to (emptied first)."""
    flush_cluster(redis_cluster)
    use_cluster(redis_cluster, xcom_settings)
    return redis_cluster.client()


@pytest.fixture
def redis_server(redis_cluster: RedisClusterProcesses) -> _ClusterAsServer:
    return _ClusterAsServer(redis_cluster)


@pytest.fixture
def real_backend(
    redis_cluster: RedisClusterProcesses, xcom_settings: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> str:
    prefix = "t-" + re.sub(r"[^A-Za-z0-9_.-]", "-", request.node.name)[:80]
    use_cluster(redis_cluster, xcom_settings)
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__KEY_PREFIX", prefix)
    return prefix


@pytest.fixture
def store(redis_cluster: RedisClusterProcesses) -> RedisStore:
    return RedisStore(redis_cluster.client(), redis_cluster.url, chunk_bytes=1024)


# -- what only a cluster has ------------------------------------------------------------------------


def keys_per_master(cluster: RedisClusterProcesses, pattern: str = "*") -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for port in cluster.master_ports():
        node = redis.Redis(port=port)
        found[port] = {k.decode() for k in node.scan_iter(match=pattern, count=1000)}
    return found


def test_runs_spread_over_every_master_and_each_run_stays_on_one(
    fake_redis: RedisCluster, redis_cluster: RedisClusterProcesses
) -> None:
    for run in range(30):
        for task in ("a", "b"):
            push({"run": run}, run_id=f"r{run}", task_id=task)
        push(os.urandom(3000), run_id=f"r{run}", task_id="big", key="chunked")
    placed = keys_per_master(redis_cluster, "xcom:*")
    assert all(placed.values()), f"some master holds no run: {placed}"
    # A run's values, chunked ones and its index live together on one master.
    for run in range(30):
        owners = {port for port, found in placed.items() if any(f"{{etl/r{run}}}" in k for k in found)}
        assert len(owners) == 1, f"run r{run} is split over {owners}"


def test_dag_level_clear_scans_every_primary_and_spares_other_dags(
    fake_redis: RedisCluster, redis_cluster: RedisClusterProcesses
) -> None:
    ours = [push(run, run_id=f"r{run}", map_index=run % 3) for run in range(40)]
    theirs = [push(run, dag_id="etl2", run_id=f"r{run}") for run in range(10)]
    assert sum(1 for found in keys_per_master(redis_cluster, "xcom:{etl/*").values() if found) == 3
    assert ExclusiveRedisXCom.clear(dag_id="etl") == 40
    assert value_keys(fake_redis, "xcom:{etl/*") == set()
    assert [pull(ref) for ref in theirs] == list(range(10))
    assert len(ours) == 40


def test_pulls_spanning_runs_take_one_round_trip_per_master(
    fake_redis: RedisCluster, redis_cluster: RedisClusterProcesses, monkeypatch: pytest.MonkeyPatch
) -> None:
    references = [push({"run": run}, run_id=f"r{run}", map_index=m) for run in range(50) for m in range(2)]
    references.append(push(os.urandom(2000), run_id="chunky"))  # chunk_bytes is large: plain
    ExclusiveRedisXCom.deserialize_many(references[:1])  # connections made, slot map loaded
    sends: list[int] = []
    original = redis.connection.AbstractConnection.send_packed_command

    def counted(self: Any, command: Any, check_health: bool = True) -> None:
        sends.append(self.port)
        original(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
    values = ExclusiveRedisXCom.deserialize_many(references)
    assert [v["run"] for v in values[:-1]] == [run for run in range(50) for _ in range(2)]
    assert len(sends) <= 3, f"{len(sends)} round trips for {len(references)} values on 3 masters: {sends}"


def test_deletes_are_grouped_per_slot_never_cross_slot(
    redis_cluster: RedisClusterProcesses,
) -> None:
    client = redis_cluster.client()
    store = RedisStore(client, redis_cluster.url)
    names = [f"del-{uuid.uuid4().hex}:{{run{i % 7}}}:k{i}" for i in range(60)]
    for name in names:
        client.set(name, b"v")
    assert len({key_slot(n.encode()) for n in names}) == 7
    assert store.unlink([*names, "del-never-written"]) == 60
    assert not any(client.exists(n) for n in names)


def test_wait_replicas_on_the_cluster_returns_after_the_replica_has_the_value(
    fake_redis: RedisCluster, redis_cluster: RedisClusterProcesses, xcom_settings: pytest.MonkeyPatch
) -> None:
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__WAIT_REPLICAS", "1")
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__CHUNK_BYTES", "4096")
    small = push("small")
    big = push(os.urandom(20_000), task_id="big")
    for reference in (small, big):
        key = redis_key(reference)
        master = redis_cluster.client().get_node_from_key(key)
        replica = next(p for p in redis_cluster.ports if _replica_of(p) == master.port)
        # The replica holds the value the moment the push returns (READONLY: a replica may answer).
        on_replica = redis.Redis(port=replica, single_connection_client=True)
        on_replica.execute_command("READONLY")
        assert on_replica.exists(key) == 1
    assert pull(small) == "small"


def test_wait_for_more_replicas_than_exist_fails_naming_the_xcom_and_the_numbers(
    fake_redis: RedisCluster, xcom_settings: pytest.MonkeyPatch
) -> None:
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__WAIT_REPLICAS", "2")
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__WAIT_TIMEOUT_MS", "200")
    started = time.monotonic()
    with pytest.raises(ReplicationError) as info:
        push("v", task_id="load", map_index=2)
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert "task_id='load'" in message and "map_index=2" in message
    # The one replica confirms, unless the machine is too loaded for it to within 200 ms.
    assert re.search(r"[01] replica\(s\) within 200 ms", message) and "wait_replicas = 2" in message


def test_a_truncated_chunked_value_is_an_error_naming_the_node_that_holds_it(
    store: RedisStore, redis_cluster: RedisClusterProcesses
) -> None:
    key = f"st-{uuid.uuid4().hex[:8]}:{{run}}:v"
    store.put(key, os.urandom(5000), ttl=100)
    client = redis_cluster.client()
    client.rpop(key)
    with pytest.raises(CorruptPayloadError) as info:
        store.get(key)
    assert client.get_node_from_key(key).name in str(info.value)
    assert "truncated" in str(info.value)


def _replica_of(port: int) -> int | None:
    info = redis.Redis(port=port).info("replication")
    return int(info["master_port"]) if info["role"] == "slave" else None


# -- WAIT on one node with a replica ----------------------------------------------------------------


@pytest.fixture
def primary_with_replica() -> Iterator[tuple[RedisServer, RedisServer]]:
    with RedisServer() as primary:
        primary.client().config_set("repl-diskless-sync-delay", 0)  # the replica syncs at once
        with RedisServer(["--replicaof", "127.0.0.1", str(primary.port)]) as replica:
            deadline = time.monotonic() + 10
            # Until the primary counts the replica as online: WAIT counts only those.
            while "online" not in str(primary.client().info("replication").get("slave0", "")):
                assert time.monotonic() < deadline, "the replica did not sync"
                time.sleep(0.05)
            yield primary, replica


def test_wait_replicas_on_one_node_confirms_each_push_or_fails_clearly(
    primary_with_replica: tuple[RedisServer, RedisServer], xcom_settings: pytest.MonkeyPatch
) -> None:
    primary, replica = primary_with_replica
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__URL", primary.url)
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__WAIT_REPLICAS", "1")
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__WAIT_TIMEOUT_MS", "3000")  # a loaded CI machine
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__CHUNK_BYTES", "4096")
    references = [push("small"), push(os.urandom(6000), key="medium"), push(os.urandom(50_000), key="big")]
    for reference in references:
        assert replica.client().exists(redis_key(reference)) == 1
    replica.stop()
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__WAIT_TIMEOUT_MS", "300")
    reset_runtime()
    with pytest.raises(ReplicationError) as info:
        push("after the replica died", key="late")
    assert "key='late'" in str(info.value) and "0 replica(s) within 300 ms" in str(info.value)
    assert get_runtime().store.wait_replicas == 1
    assert parse_key(redis_key(references[0])) is not None


def test_demo_reaches_a_cluster_through_its_url(redis_cluster: RedisClusterProcesses) -> None:
    from redis_xcom.ops.demo import unreachable_reason
    from tests.cluster_process import free_cluster_ports

    assert unreachable_reason(redis_cluster.url) is None
    nowhere = f"redis+cluster://127.0.0.1:{free_cluster_ports(1)[0]}/0"
    assert unreachable_reason(nowhere, timeout=0.5) is not None


def _push_and_pull_in_child(reference: str, queue: Any, inherited: Any) -> None:
    from redis_xcom.runtime import get_runtime as child_runtime

    try:
        # inherited: the parent's client, copied by fork
        mine = push("from the child", task_id="child")
        queue.put((pull(reference), pull(mine), child_runtime().store.client is not inherited))
    except Exception as exc:  # reported to the parent, which fails the test with it
        queue.put(repr(exc))


def test_a_forked_task_process_builds_its_own_cluster_client(fake_redis: RedisCluster) -> None:
    import multiprocessing

    reference = push("from the parent")
    parent_client = get_runtime().store.client
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_push_and_pull_in_child, args=(reference, queue, parent_client))
    child.start()
    answer = queue.get(timeout=60)
    child.join(timeout=60)
    assert not isinstance(answer, str), answer
    assert answer == ("from the parent", "from the child", True)
    assert get_runtime().store.client is parent_client and pull(reference) == "from the parent"
