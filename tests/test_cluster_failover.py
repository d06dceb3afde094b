"""Pushes and pulls through the backend while the cluster changes under them: a slot migrated from
one master to another (MIGRATING/IMPORTING, MIGRATE, SETSLOT NODE), and a master killed so that its
replica takes over. Afterwards nothing acknowledged is lost, nothing is crossed, one key per XCom."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from redis.cluster import key_slot

from redis_xcom import RedisUnavailableError, RedisXComError, ReplicationError
from redis_xcom.keys import parse_key
from tests.cluster_process import RedisClusterProcesses, use_cluster
from tests.xcom_calls import pull, push, redis_key

pytestmark = [pytest.mark.integration, pytest.mark.topology]


@dataclass
class Load:
    """Pushes (some chunked) and pulls of what was acknowledged, in a thread, until stopped."""

    runs: list[str]
    acknowledged: dict[str, Any] = field(default_factory=dict)  # reference -> last value pushed
    failures: list[Exception] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    pushes: int = 0  # acknowledged, overwrites included
    slowest: float = 0.0  # seconds, of one push or pull

    def value(self, run: str, i: int) -> dict[str, Any]:
        pad = os.urandom(6000) if i % 5 == 0 else b""  # above chunk_bytes: a chunked value
        return {"run": run, "task": f"t{i % 40}", "version": i, "pad": pad}

    def step(self, i: int) -> None:
        started = time.monotonic()
        try:
            self._step(i)
        finally:
            self.slowest = max(self.slowest, time.monotonic() - started)

    def _step(self, i: int) -> None:
        run = self.runs[i % len(self.runs)]
        value = self.value(run, i)
        try:
            # 40 tasks per run, each pushed again and again: overwrites while the slot moves.
            reference = push(value, dag_id="load", run_id=run, task_id=value["task"])
        except RedisXComError as exc:
            self.failures.append(exc)
            return
        self.acknowledged[reference] = value
        self.pushes += 1
        earlier = list(self.acknowledged)[(i * 7) % len(self.acknowledged)]
        try:
            got = pull(earlier)
        except RedisXComError as exc:
            self.failures.append(exc)
            return
        if got != self.acknowledged[earlier]:
            self.wrong.append(f"{earlier} returned version {got.get('version')} of {got.get('run')}")

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            try:
                self.step(i)
            except Exception as exc:  # anything but a RedisXComError is a bug: the check names it
                self.failures.append(exc)
            i += 1

    def __enter__(self) -> Load:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=60)


def check_afterwards(cluster: RedisClusterProcesses, load: Load) -> None:
    """Every acknowledged value pulls back as last pushed; Redis holds one key per XCom and nothing else."""
    assert load.wrong == [], load.wrong[:5]
    assert len(load.acknowledged) > 50, "the load hardly ran"
    for reference, value in load.acknowledged.items():
        assert pull(reference) == value, reference
    client = cluster.client()
    stored = {k.decode() for k in client.scan_iter(match="xcom:*", count=1000)}
    values = {k for k in stored if parse_key(k) is not None}
    assert {redis_key(r) for r in load.acknowledged} <= values
    # Nothing but XCom keys and run indexes: no stray chunk or temporary key.
    assert all(k in values or k.endswith("#index") for k in stored), sorted(stored - values)[:5]
    for index in (k for k in stored if k.endswith("#index")):
        members = {m.decode() for m in client.smembers(index)}
        assert members <= values and members == {k for k in values if k.startswith(index[: -len("#index")])}


def _node_id(port: int) -> str:
    return str(redis.Redis(port=port, decode_responses=True).execute_command("CLUSTER", "MYID"))


def migrate_slot(cluster: RedisClusterProcesses, slot: int, source: int, target: int) -> int:
    """Move a slot as redis-cli --cluster reshard does, a few keys at a time; returns how many moved."""
    src, dst = redis.Redis(port=source), redis.Redis(port=target)
    src_id, dst_id = _node_id(source), _node_id(target)
    dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
    src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
    moved = 0
    while True:
        keys = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 5)
        if not keys:
            break
        src.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)
        moved += len(keys)
        time.sleep(0.02)  # the load meets ASK and TRYAGAIN meanwhile
    for port in (target, source, *(p for p in cluster.master_ports() if p not in (source, target))):
        redis.Redis(port=port).execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
    return moved


def _settings(monkeypatch: pytest.MonkeyPatch, cluster: RedisClusterProcesses, **options: str) -> None:
    use_cluster(cluster, monkeypatch)
    monkeypatch.setenv("AIRFLOW__REDIS_XCOM__CHUNK_BYTES", "4096")
    monkeypatch.setenv("AIRFLOW__REDIS_XCOM__RETRY_ATTEMPTS", "12")
    monkeypatch.setenv("AIRFLOW__REDIS_XCOM__RETRY_BACKOFF_BASE", "0.05")
    monkeypatch.setenv("AIRFLOW__REDIS_XCOM__RETRY_BACKOFF_CAP", "1.0")
    for name, value in options.items():
        monkeypatch.setenv(f"AIRFLOW__REDIS_XCOM__{name.upper()}", value)


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout}s"
        time.sleep(0.1)


def test_a_slot_migrated_mid_load_loses_and_crosses_nothing(
    fresh_redis_cluster: RedisClusterProcesses, xcom_settings: pytest.MonkeyPatch
) -> None:
    cluster = fresh_redis_cluster
    _settings(xcom_settings, cluster)
    run = "moving"
    slot = key_slot(f"load/{run}".encode())
    client = cluster.client()
    source = client.nodes_manager.get_node_from_slot(slot).port
    target = next(p for p in cluster.master_ports() if p != source)
    load = Load(runs=[run, "staying-1", "staying-2"])
    for i in range(120):
        load.step(i)  # the slot holds keys, chunked ones among them, before it moves
    with load:
        time.sleep(0.5)
        moved = migrate_slot(cluster, slot, source, target)
        time.sleep(1.0)
    assert moved >= 40
    redirected = redis.Redis(port=source).info("errorstats")
    assert {"errorstat_ASK", "errorstat_TRYAGAIN"} & set(redirected), (
        f"the load never met the move: {redirected}"
    )
    assert load.failures == [], [str(f) for f in load.failures[:3]]
    assert redis.Redis(port=source).execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
    assert redis.Redis(port=target).execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) >= 41  # 40 + index
    check_afterwards(cluster, load)


def test_a_master_killed_mid_load_loses_nothing_acknowledged_with_wait_replicas(
    fresh_redis_cluster: RedisClusterProcesses, xcom_settings: pytest.MonkeyPatch
) -> None:
    cluster = fresh_redis_cluster
    _settings(xcom_settings, cluster, wait_replicas="1", wait_timeout_ms="1000")
    load = Load(runs=[f"run-{i}" for i in range(12)])  # spread over the 3 masters
    for i in range(60):
        load.step(i)
    masters = cluster.master_ports()
    victim = cluster.server(masters[0])
    with load:
        time.sleep(0.5)
        at_kill = load.pushes
        victim.stop()  # SIGKILL: its replica must take over
        _wait(lambda: len(cluster.master_ports()) == 3, 30, "the replica's promotion")
        time.sleep(0.5)
        victim.start()  # back as the new master's replica, so WAIT 1 can succeed again
        cluster.wait_ok()
        time.sleep(1.0)
    assert load.pushes > at_kill + 20, (
        f"the load stopped at the failover: {load.pushes - at_kill} pushes, {load.failures[:3]}"
    )
    print(
        f"{load.pushes - at_kill} pushes after the kill, {len(load.failures)} failed, "
        f"slowest {load.slowest:.2f}s"
    )
    # retry_attempts x retry_backoff_cap = 12 s bounds one attempt's retries (a push and a pull here).
    assert load.slowest < 2 * 12 * 1.0 + 5
    for failure in load.failures:
        # Only while the slot had no master, or no replica for WAIT: never a silent loss.
        assert isinstance(failure, RedisUnavailableError | ReplicationError), repr(failure)
        assert "127.0.0.1:" in str(failure), failure
    check_afterwards(cluster, load)


def test_a_migration_that_never_settles_fails_in_bounded_time_naming_the_node(
    fresh_redis_cluster: RedisClusterProcesses, xcom_settings: pytest.MonkeyPatch
) -> None:
    cluster = fresh_redis_cluster
    _settings(xcom_settings, cluster, retry_attempts="3", retry_backoff_cap="0.5")
    push("before", dag_id="load", run_id="stuck", task_id="t0")
    slot = key_slot(b"load/stuck")
    source = cluster.client().nodes_manager.get_node_from_slot(slot).port
    target = next(p for p in cluster.master_ports() if p != source)
    # MIGRATING with no IMPORTING on the other side: a new key is sent back and forth for ever.
    redis.Redis(port=source).execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", _node_id(target))
    started = time.monotonic()
    with pytest.raises(RedisUnavailableError) as info:
        push("never stored", dag_id="load", run_id="stuck", task_id="new")
    # retry_attempts x retry_backoff_cap, plus the redirections redis-py follows itself
    assert time.monotonic() - started < 3 * 0.5 + 10
    assert "127.0.0.1:" in str(info.value) and "retry_attempts" in str(info.value)
    redis.Redis(port=source).execute_command("CLUSTER", "SETSLOT", slot, "STABLE")
    assert pull(push("after", dag_id="load", run_id="stuck", task_id="new")) == "after"
