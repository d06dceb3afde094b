"""ExclusiveRedisXCom against fakeredis: what Airflow's calls store, return, purge and clear."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import fakeredis
import pytest

from redis_xcom import ExclusiveRedisXCom, XComExpiredError
from redis_xcom.backend import SKIPMIXIN_KEY
from redis_xcom.errors import CorruptPayloadError, RedisXComError, ValueTooLargeError
from tests.xcom_calls import own_row, value_keys

RUN = "manual__2024-01-01T00:00:00+00:00"


def push(value: Any, *, dag_id: str = "etl", run_id: str = RUN, task_id: str = "extract", map_index: int = -1,
         key: str = "return_value") -> Any:  # fmt: skip
    return ExclusiveRedisXCom.serialize_value(
        value, key=key, task_id=task_id, dag_id=dag_id, run_id=run_id, map_index=map_index
    )


def pull(reference: Any) -> Any:
    return ExclusiveRedisXCom.deserialize_value(SimpleNamespace(value=reference))


def test_push_stores_value_in_redis_and_returns_a_short_reference(fake_redis: fakeredis.FakeRedis) -> None:
    payload = {"rows": list(range(50_000)), "name": "big"}
    reference = push(payload)
    assert reference == f"redis-xcom://xcom:{{etl/{RUN}}}:extract:-1:return_value"
    assert len(reference) < 1024
    # The DB column is JSON: the reference must survive json round trips and not parse as a scalar.
    assert json.loads(json.dumps(reference)) == reference
    assert pull(reference) == payload
    assert fake_redis.exists(reference.removeprefix("redis-xcom://")) == 1


def test_every_value_gets_the_configured_ttl(
    fake_redis: fakeredis.FakeRedis, xcom_settings: pytest.MonkeyPatch
) -> None:
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__TTL", "3600")
    key = push("x").removeprefix("redis-xcom://")
    assert 3590 <= fake_redis.ttl(key) <= 3600


def test_a_retry_overwrites_the_same_key_instead_of_orphaning(fake_redis: fakeredis.FakeRedis) -> None:
    first = push({"try": 1})
    second = push({"try": 2})
    assert first == second
    assert pull(second) == {"try": 2}
    assert len(value_keys(fake_redis, "xcom:*")) == 1


def test_branch_decisions_stay_inline_for_the_scheduler(fake_redis: fakeredis.FakeRedis) -> None:
    decision = {"followed": ["a", "b"]}
    stored = push(decision, key=SKIPMIXIN_KEY)
    assert stored == decision
    assert list(fake_redis.scan_iter("*")) == []
    assert pull(stored) == decision


@pytest.mark.parametrize("row", [42, "plain string", {"a": [1, 2]}, ["x", 1.5]])
def test_rows_that_never_went_through_the_backend_still_load(
    fake_redis: fakeredis.FakeRedis, row: Any
) -> None:
    # REST-API rows, trigger events and rows from before the switch hold plain JSON values.
    assert pull(row) == row


def test_missing_value_raises_expired_error_with_coordinates_ttl_and_advice(
    fake_redis: fakeredis.FakeRedis,
) -> None:
    reference = push([1, 2, 3], task_id="load", map_index=4, key="rows")
    fake_redis.delete(reference.removeprefix("redis-xcom://"))
    with pytest.raises(XComExpiredError) as info:
        pull(reference)
    message = str(info.value)
    for fragment in (
        "dag_id='etl'",
        f"run_id='{RUN}'",
        "task_id='load'",
        "map_index=4",
        "key='rows'",
        "604800",
        "re-run",
    ):
        assert fragment in message


def test_corrupt_value_raises_a_clear_error_naming_the_xcom(fake_redis: fakeredis.FakeRedis) -> None:
    reference = push({"a": 1}, task_id="t1")
    fake_redis.set(reference.removeprefix("redis-xcom://"), b"\x00not ours at all")
    with pytest.raises(CorruptPayloadError, match="task_id='t1'"):
        pull(reference)


def test_unserializable_value_raises_type_error_naming_the_xcom_and_type(
    fake_redis: fakeredis.FakeRedis,
) -> None:
    class Opaque:
        pass

    with pytest.raises(TypeError) as info:
        push({"rows": [1, 2, Opaque()]}, key="rows")
    assert "key='rows'" in str(info.value) and "Opaque" in str(info.value)
    assert list(fake_redis.scan_iter("*")) == [], "nothing is written for a value that cannot be stored"


def test_values_above_max_value_bytes_are_refused_before_writing(
    fake_redis: fakeredis.FakeRedis, xcom_settings: pytest.MonkeyPatch
) -> None:
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__MAX_VALUE_BYTES", "1000")
    with pytest.raises(ValueTooLargeError, match="max_value_bytes"):
        push("x" * 5000)
    assert list(fake_redis.scan_iter("*")) == []
    assert pull(push("small")) == "small"


def test_push_without_coordinates_is_refused(fake_redis: fakeredis.FakeRedis) -> None:
    with pytest.raises(RedisXComError, match="dag_id"):
        ExclusiveRedisXCom.serialize_value(1, key="k")


def test_purge_unlinks_exactly_the_referenced_key(fake_redis: fakeredis.FakeRedis) -> None:
    kept = push("keep", task_id="other")
    purged = push("drop")
    ExclusiveRedisXCom.purge(own_row(purged))
    assert fake_redis.exists(purged.removeprefix("redis-xcom://")) == 0
    assert run_index(fake_redis) == {kept.removeprefix("redis-xcom://")}
    assert pull(kept) == "keep"
    # value=None and inline rows are no-ops, not errors.
    ExclusiveRedisXCom.purge(SimpleNamespace(key="return_value", value=None))
    ExclusiveRedisXCom.purge(SimpleNamespace(key="return_value", value={"inline": True}))
    assert pull(kept) == "keep"


def test_deserialize_many_reads_every_value_in_one_round_trip(
    fake_redis: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    references = [push({"i": i}, task_id="mapped", map_index=i) for i in range(200)]
    references.insert(3, {"inline": "row"})
    from redis_xcom.runtime import get_runtime

    client = get_runtime().store.client
    calls: list[str] = []
    original = client.execute_command
    monkeypatch.setattr(client, "execute_command", lambda *a, **kw: calls.append(a[0]) or original(*a, **kw))
    values = ExclusiveRedisXCom.deserialize_many(references)
    assert values[3] == {"inline": "row"}
    assert [v["i"] for k, v in enumerate(values) if k != 3] == list(range(200))
    assert calls == [], "single GETs were issued instead of one pipeline"


def test_deserialize_many_reports_the_missing_item(fake_redis: fakeredis.FakeRedis) -> None:
    references = [push(i, task_id="mapped", map_index=i) for i in range(5)]
    fake_redis.delete(references[2].removeprefix("redis-xcom://"))
    with pytest.raises(XComExpiredError, match="map_index=2"):
        ExclusiveRedisXCom.deserialize_many(references)


def seed_for_clear() -> dict[str, str]:
    """One XCom per trap: neighbouring runs, dags, tasks, map indexes and glob-looking keys."""
    cases = {
        "target": dict(dag_id="etl", run_id="r", task_id="t", map_index=-1, key="k"),
        "target_mapped": dict(dag_id="etl", run_id="r", task_id="t", map_index=3, key="k"),
        "target_kstar": dict(dag_id="etl", run_id="r", task_id="t", map_index=-1, key="k*"),
        "other_task": dict(dag_id="etl", run_id="r", task_id="t2", map_index=-1, key="k"),
        "run_r1": dict(dag_id="etl", run_id="r:1", task_id="t", map_index=-1, key="k"),
        "run_rstar": dict(dag_id="etl", run_id="r*", task_id="t", map_index=-1, key="k"),
        "dag_v2": dict(dag_id="etl_v2", run_id="r", task_id="t", map_index=-1, key="k"),
        "braces": dict(dag_id="etl", run_id="r}{", task_id="t", map_index=-1, key="k"),
        "backslash": dict(dag_id="etl", run_id="r", task_id="t\\", map_index=-1, key="k[a-z]?"),
    }
    return {name: push(name, **coords) for name, coords in cases.items()}  # type: ignore[arg-type]


def surviving(references: dict[str, str], fake: fakeredis.FakeRedis) -> set[str]:
    return {name for name, ref in references.items() if fake.exists(ref.removeprefix("redis-xcom://"))}


@pytest.mark.parametrize(
    ("selection", "deleted"),
    [
        (
            dict(dag_id="etl", run_id="r"),
            {"target", "target_mapped", "target_kstar", "other_task", "backslash"},
        ),
        (dict(dag_id="etl", run_id="r", task_id="t"), {"target", "target_mapped", "target_kstar"}),
        (dict(dag_id="etl", run_id="r", task_id="t", map_index=-1), {"target", "target_kstar"}),
        (dict(dag_id="etl", run_id="r", key="k*"), {"target_kstar"}),
        (dict(dag_id="etl", run_id="r*"), {"run_rstar"}),
        (dict(dag_id="etl", run_id="r}{"), {"braces"}),
        (dict(dag_id="etl", task_id="t\\", key="k[a-z]?"), {"backslash"}),
        (dict(dag_id="etl_v2"), {"dag_v2"}),
        (dict(dag_id="et"), set()),
    ],
)
def test_clear_deletes_exactly_its_selection(
    fake_redis: fakeredis.FakeRedis, selection: dict[str, Any], deleted: set[str]
) -> None:
    references = seed_for_clear()
    assert ExclusiveRedisXCom.clear(**selection) == len(deleted)
    assert surviving(references, fake_redis) == set(references) - deleted


def test_clear_of_a_dag_spares_every_other_dag(fake_redis: fakeredis.FakeRedis) -> None:
    references = seed_for_clear()
    assert ExclusiveRedisXCom.clear(dag_id="etl") == 8
    assert surviving(references, fake_redis) == {"dag_v2"}


def test_clear_never_touches_keys_of_another_prefix(
    fake_redis: fakeredis.FakeRedis, xcom_settings: pytest.MonkeyPatch
) -> None:
    fake_redis.set("unrelated:{etl/r}:t:-1:k", b"theirs")
    fake_redis.set("xcomx:{etl/r}:t:-1:k", b"theirs")
    push("mine", dag_id="etl", run_id="r", task_id="t")
    assert ExclusiveRedisXCom.clear(dag_id="etl") == 1
    assert fake_redis.get("unrelated:{etl/r}:t:-1:k") == b"theirs"
    assert fake_redis.get("xcomx:{etl/r}:t:-1:k") == b"theirs"


class FakeSupervisor:
    """Stands in for the supervisor's answer to the execution-API request get_all sends."""

    def __init__(self, values: list[Any]) -> None:
        self.values = values
        self.requests: list[Any] = []

    def send(self, msg: Any) -> Any:
        from airflow.sdk.execution_time.comms import XComSequenceSliceResult

        self.requests.append(msg)
        return XComSequenceSliceResult(root=self.values)


def test_get_all_returns_every_map_index_in_order(
    fake_redis: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.execution_time import task_runner

    references = [push({"i": i}, task_id="mapped", map_index=i) for i in range(10)]
    supervisor = FakeSupervisor(references)
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", supervisor, raising=False)
    pulled = ExclusiveRedisXCom.get_all(key="return_value", dag_id="etl", task_id="mapped", run_id=RUN)
    assert pulled == [{"i": i} for i in range(10)]
    assert supervisor.requests[0].task_id == "mapped" and supervisor.requests[0].start is None
    supervisor.values = []
    assert ExclusiveRedisXCom.get_all(key="return_value", dag_id="etl", task_id="none", run_id=RUN) is None


class FakeAsyncSupervisor(FakeSupervisor):
    """The comms of Airflow 3.1 and later, which can also be awaited."""

    async def asend(self, msg: Any) -> Any:
        return self.send(msg)


@pytest.mark.parametrize("comms", [FakeSupervisor, FakeAsyncSupervisor], ids=["3.0 send only", "asend"])
def test_aget_all_works_with_and_without_async_comms(
    comms: type[FakeSupervisor], fake_redis: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from airflow.sdk.execution_time import task_runner

    references = [push({"i": i}, task_id="mapped", map_index=i) for i in range(3)]
    supervisor = comms(references)
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", supervisor, raising=False)
    pulled = asyncio.run(
        ExclusiveRedisXCom.aget_all(key="return_value", dag_id="etl", task_id="mapped", run_id=RUN)
    )
    assert pulled == [{"i": i} for i in range(3)]
    assert len(supervisor.requests) == 1


def test_deserialize_many_serves_a_repeated_reference_every_time(fake_redis: fakeredis.FakeRedis) -> None:
    first, second = push({"n": 1}, map_index=0), push({"n": 2}, map_index=1)
    assert ExclusiveRedisXCom.deserialize_many([first, second, first, "inline", first]) == [
        {"n": 1},
        {"n": 2},
        {"n": 1},
        "inline",
        {"n": 1},
    ]


def run_index(fake: fakeredis.FakeRedis, dag_id: str = "etl", run_id: str = RUN) -> set[str]:
    from redis_xcom.keys import run_index_key

    return {m.decode() for m in fake.smembers(run_index_key("xcom", dag_id, run_id))}


def test_each_run_keeps_an_index_of_its_keys_that_outlives_them(fake_redis: fakeredis.FakeRedis) -> None:
    from redis_xcom.keys import run_index_key

    references = [push(i, task_id="t", map_index=i) for i in range(3)]
    push("again", task_id="t", map_index=0)  # a retry rewrites a key: the index does not grow
    push("other run", run_id="r2")
    assert run_index(fake_redis) == {r.removeprefix("redis-xcom://") for r in references}
    index_ttl = fake_redis.ttl(run_index_key("xcom", "etl", RUN))
    assert all(0 < fake_redis.ttl(r.removeprefix("redis-xcom://")) <= index_ttl for r in references)


def test_run_level_clear_reads_the_index_and_never_scans_the_keyspace(
    fake_redis: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from redis_xcom.runtime import get_runtime

    keep = push("other run", run_id="r2")
    references = seed_for_clear()
    store = get_runtime().store

    def no_scan(pattern: str) -> None:
        raise AssertionError(f"run-level clear scanned the keyspace for {pattern}")

    monkeypatch.setattr(store, "scan", no_scan)
    assert ExclusiveRedisXCom.clear(dag_id="etl", run_id="r", task_id="t") == 3
    assert ExclusiveRedisXCom.clear(dag_id="etl", run_id="r") == 2  # other_task and backslash
    assert surviving(references, fake_redis) == {"run_r1", "run_rstar", "dag_v2", "braces"}
    assert run_index(fake_redis, run_id="r") == set(), "a cleared run leaves no index behind"
    assert pull(keep) == "other run"


def test_large_values_are_indexed_too(fake_redis: fakeredis.FakeRedis) -> None:
    from redis_xcom.storage.store import SCRIPT_VALUE_MAX

    big = push(b"b" * (SCRIPT_VALUE_MAX * 4), task_id="big")
    small = push("s", task_id="small")
    assert run_index(fake_redis) == {big.removeprefix("redis-xcom://"), small.removeprefix("redis-xcom://")}
    assert ExclusiveRedisXCom.clear(dag_id="etl", run_id=RUN) == 2


def test_dag_level_clear_drops_the_deleted_keys_from_their_runs_indexes(
    fake_redis: fakeredis.FakeRedis,
) -> None:
    kept = push("kept", run_id="r1", task_id="other")
    push("a", run_id="r1", task_id="t")
    push("b", run_id="r2", task_id="t")
    other_dag = push("c", dag_id="etl_v2", run_id="r1", task_id="t")
    assert ExclusiveRedisXCom.clear(dag_id="etl", task_id="t") == 2
    assert run_index(fake_redis, run_id="r1") == {kept.removeprefix("redis-xcom://")}
    assert run_index(fake_redis, run_id="r2") == set(), "an emptied index disappears"
    assert ExclusiveRedisXCom.clear(dag_id="etl") == 1
    assert run_index(fake_redis, run_id="r1") == set()
    assert run_index(fake_redis, dag_id="etl_v2", run_id="r1") == {other_dag.removeprefix("redis-xcom://")}
