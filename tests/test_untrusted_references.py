"""A row's reference is user input (REST POST/PATCH xcomEntries, the UI, DAG code): the backend's paths.

A reference naming a key outside key_prefix, or a value that is not the row's own, is never read,
deleted or probed. (The UI plugin's page has its own tests in tests/ui.)
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import fakeredis
import pytest

from redis_xcom import ExclusiveRedisXCom, keys
from redis_xcom.errors import RedisXComError, UntrustedReferenceError
from redis_xcom.keys import run_index_key
from tests.airflow_limits import PER_ATTEMPT_REASON, per_attempt_xcoms

RUN = "r1"


def push(value: Any, *, dag_id: str = "etl", task_id: str = "t", key: str = "k") -> str:
    return ExclusiveRedisXCom.serialize_value(value, key=key, task_id=task_id, dag_id=dag_id, run_id=RUN)


FOREIGN_KEYS = ["celery", "session:admin", "billing:{etl/r1}:t:-1:k"]


@pytest.mark.parametrize("foreign", FOREIGN_KEYS)
def test_a_pull_of_a_forged_reference_raises_naming_the_row_and_reads_nothing(
    fake_redis: fakeredis.FakeRedis, foreign: str
) -> None:
    fake_redis.set(foreign, b"secret")
    with pytest.raises(UntrustedReferenceError, match=r"XCom\(key='k'\): .*Delete or correct the row"):
        ExclusiveRedisXCom.deserialize_value(SimpleNamespace(key="k", value="redis-xcom://" + foreign))
    with pytest.raises(UntrustedReferenceError):
        ExclusiveRedisXCom.deserialize_many([push("mine"), "redis-xcom://" + foreign])


@pytest.mark.parametrize("foreign", FOREIGN_KEYS)
def test_purge_of_a_forged_reference_leaves_redis_alone(
    fake_redis: fakeredis.FakeRedis, foreign: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake_redis.rpush(foreign, b"a queued job")
    with caplog.at_level(logging.WARNING, logger="redis_xcom.backend"):
        ExclusiveRedisXCom.purge(SimpleNamespace(key="k", value="redis-xcom://" + foreign))
    assert fake_redis.lrange(foreign, 0, -1) == [b"a queued job"]
    assert "Not purging" in caplog.text


class DeletingSupervisor:
    """The supervisor's side of XCom.delete: the row's stored value, then the row's deletion."""

    def __init__(self, stored: Any) -> None:
        self.stored = stored
        self.requests: list[Any] = []

    def send(self, msg: Any) -> Any:
        from airflow.sdk.execution_time.comms import XComResult

        self.requests.append(msg)
        return XComResult(key=msg.key, value=self.stored)


def test_delete_purges_only_a_value_of_the_row_being_deleted(
    fake_redis: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.execution_time import task_runner

    payroll = push("salaries", dag_id="payroll")
    own = push("mine")
    # A row of etl/t/k whose value was edited to payroll's reference: the row goes, payroll's value stays.
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", DeletingSupervisor(payroll), raising=False)
    ExclusiveRedisXCom.delete("k", "t", "etl", RUN)
    assert ExclusiveRedisXCom.deserialize_value(SimpleNamespace(value=payroll)) == "salaries"
    # The row's own value goes with it.
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", DeletingSupervisor(own), raising=False)
    ExclusiveRedisXCom.delete("k", "t", "etl", RUN)
    assert not fake_redis.exists(own.removeprefix("redis-xcom://"))


def test_clear_never_deletes_a_key_planted_in_the_runs_index(fake_redis: fakeredis.FakeRedis) -> None:
    from redis_xcom.runtime import get_runtime as runtime

    prefix = runtime().settings.key_prefix
    own = push("mine")
    planted = "billing:{etl/r1}:t:-1:k"
    fake_redis.set(planted, b"billing data")
    fake_redis.sadd(run_index_key(prefix, "etl", RUN), planted)
    assert ExclusiveRedisXCom.clear(dag_id="etl", run_id=RUN) == 1
    assert fake_redis.get(planted) == b"billing data"
    assert not fake_redis.exists(own.removeprefix("redis-xcom://"))


# --- pulls and deletes through Airflow's calls, each with the row it names -----------------------


class ExecutionAPI:
    """The supervisor's side of XCom reads and deletes, over xcom rows keyed by (dag, run, task, map
    index, key) as the execution API resolves them (map index -1 when a request names none)."""

    def __init__(self, rows: dict[tuple[str, str, str, int, str], Any]) -> None:
        self.rows = rows

    def send(self, msg: Any) -> Any:
        from airflow.sdk.execution_time import comms

        if isinstance(msg, comms.GetXComSequenceSlice):
            found = [v for (d, r, t, _, k), v in sorted(self.rows.items()) if (d, r, t, k) == _task_key(msg)]
            return comms.XComSequenceSliceResult(root=found)
        place = (*_task_key(msg)[:3], -1 if msg.map_index is None else msg.map_index, msg.key)
        if isinstance(msg, comms.DeleteXCom):
            self.rows.pop(place, None)
            return None
        return comms.XComResult(key=msg.key, value=self.rows.get(place))

    async def asend(self, msg: Any) -> Any:
        return self.send(msg)


def _task_key(msg: Any) -> tuple[str, str, str, str]:
    return msg.dag_id, msg.run_id, msg.task_id, msg.key


@pytest.fixture
def execution_api(monkeypatch: pytest.MonkeyPatch) -> ExecutionAPI:
    from airflow.sdk.execution_time import task_runner

    api = ExecutionAPI({})
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", api, raising=False)
    return api


class ReadSpy:
    """Every Redis key the backend's store reads, probes or deletes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from redis_xcom.runtime import get_runtime as runtime

        self.keys: list[str] = []
        store, info = runtime().store, runtime().info
        for name in ("get", "get_many", "unlink_indexed"):
            monkeypatch.setattr(store, name, self._recording(getattr(store, name)))
        monkeypatch.setattr(info, "exist", self._recording(info.exist))

    def _recording(self, method: Any) -> Any:
        def recorded(*args: Any) -> Any:
            named = args[-1] if isinstance(args[-1], list) else [args[0]]
            self.keys.extend(named)
            return method(*args)

        return recorded


def redis_key_of(reference: str) -> str:
    return reference.removeprefix("redis-xcom://")


# aget_one is Airflow's from 3.3 (get_all / aget_all are the backend's own on every minor).
AIRFLOW_HAS_AGET_ONE = any("aget_one" in vars(base) for base in ExclusiveRedisXCom.__mro__[1:])
PULLS = ["get_one", "get_all", "aget_all"] + (["aget_one"] if AIRFLOW_HAS_AGET_ONE else [])


def pull_row(how: str, *, dag_id: str = "etl", key: str = "k", map_index: int = -1) -> Any:
    """A pull of one row as xcom_pull makes it: one map index, or (get_all) all of them."""
    import asyncio

    named: dict[str, Any] = {"key": key, "dag_id": dag_id, "task_id": "t", "run_id": RUN}
    if how in ("get_one", "aget_one"):
        named["map_index"] = map_index
    call = getattr(ExclusiveRedisXCom, how)
    return asyncio.run(call(**named)) if how.startswith("a") else call(**named)


@pytest.mark.parametrize("how", PULLS)
def test_a_pull_of_a_row_holding_another_dags_reference_raises_naming_the_row_and_reads_nothing(
    fake_redis: fakeredis.FakeRedis, execution_api: ExecutionAPI, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """A user who may write XComs of etl only posts a row of etl whose value is payroll's reference."""
    payroll = push("salaries", dag_id="payroll")
    execution_api.rows[("etl", RUN, "t", -1, "k")] = payroll
    spy = ReadSpy(monkeypatch)
    with pytest.raises(UntrustedReferenceError) as raised:
        pull_row(how)
    message = str(raised.value)
    named = ["dag_id='etl'", f"run_id='{RUN}'", "task_id='t'", "key='k'"]
    named += ["map_index=-1"] if how.endswith("get_one") else []  # get_all reads every map index
    assert all(part in message.split(": its reference")[0] for part in named), message
    assert "dag_id='payroll'" in message and "Delete or correct the row" in message
    assert redis_key_of(payroll) not in spy.keys, "another DAG's value is never read"


@pytest.mark.parametrize("how", PULLS)
def test_a_cross_dag_pull_reads_the_other_dags_own_rows(
    fake_redis: fakeredis.FakeRedis, execution_api: ExecutionAPI, how: str
) -> None:
    """xcom_pull(dag_id='payroll') reads payroll's own rows: their references are theirs."""
    execution_api.rows[("payroll", RUN, "t", -1, "k")] = push("salaries", dag_id="payroll", key="k")
    pulled = pull_row(how, dag_id="payroll")
    assert pulled == (["salaries"] if how.endswith("get_all") else "salaries")


@pytest.mark.parametrize(
    ("written", "named"),
    [
        ({"task_id": "load"}, "task_id='load'"),
        ({"key": "other"}, "key='other'"),
        ({"map_index": 3}, "map_index=3"),
    ],
)
def test_another_value_of_the_same_run_is_not_the_rows(
    fake_redis: fakeredis.FakeRedis, execution_api: ExecutionAPI, written: dict[str, Any], named: str
) -> None:
    stolen = ExclusiveRedisXCom.serialize_value(
        "not yours", **{"key": "k", "task_id": "t", "dag_id": "etl", "run_id": RUN, "map_index": 2, **written}
    )
    execution_api.rows[("etl", RUN, "t", 2, "k")] = stolen
    with pytest.raises(UntrustedReferenceError, match=rf"its reference names XCom\(.*{named}"):
        pull_row("get_one", map_index=2)


@pytest.fixture
def running_etl_task() -> Iterator[Any]:
    """The context the task runner sets while a task of etl runs (its templates, mapped inputs, execute)."""
    from airflow.sdk.execution_time.context import set_current_context

    ti = SimpleNamespace(dag_id="etl", run_id=RUN, task_id="consumer", map_index=-1, id=uuid.uuid4())
    with set_current_context({"ti": ti}):  # type: ignore[typeddict-item]
        yield ti


def load_mapped_input(stored: Any) -> Any:
    """How a mapped sequence's item is loaded (LazyXComSequence): the stored value alone, no row."""
    wrapped = SimpleNamespace(value=stored)
    load = getattr(ExclusiveRedisXCom, "_load", None)  # Airflow 3.4
    return ExclusiveRedisXCom.deserialize_value(wrapped) if load is None else load(wrapped)


def test_a_mapped_input_naming_another_dags_value_raises(
    fake_redis: fakeredis.FakeRedis, running_etl_task: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow reads a mapped sequence only from the DAG run of the task consuming it."""
    payroll = push("salaries", dag_id="payroll")
    spy = ReadSpy(monkeypatch)
    with pytest.raises(UntrustedReferenceError, match=r"XCom\(dag_id='etl', run_id='r1'\).*dag_id='payroll'"):
        load_mapped_input(payroll)
    assert redis_key_of(payroll) not in spy.keys
    assert load_mapped_input(push("mine", task_id="producer")) == "mine"


def test_delete_purges_only_the_value_of_the_map_index_it_deletes(
    fake_redis: fakeredis.FakeRedis, execution_api: ExecutionAPI
) -> None:
    """A retry of map index 2 whose row was edited to name map index 3's value leaves that value."""
    third = ExclusiveRedisXCom.serialize_value("three", key="k", task_id="t", dag_id="etl", run_id=RUN, map_index=3)  # fmt: skip  # noqa: E501
    own = ExclusiveRedisXCom.serialize_value("two", key="k", task_id="t", dag_id="etl", run_id=RUN, map_index=2)  # fmt: skip  # noqa: E501
    execution_api.rows[("etl", RUN, "t", 3, "k")] = third
    execution_api.rows[("etl", RUN, "t", 2, "k")] = third
    ExclusiveRedisXCom.delete("k", "t", "etl", RUN, map_index=2)
    assert pull_row("get_one", map_index=3) == "three", "map index 3's value is still there"
    execution_api.rows[("etl", RUN, "t", 2, "k")] = own
    ExclusiveRedisXCom.delete("k", "t", "etl", RUN, map_index=2)
    assert not fake_redis.exists(redis_key_of(own)), "the row's own value went with it"


# --- Airflow 3.4: task instance ids in keys --------------------------------------------------------

per_attempt = pytest.mark.skipif(not per_attempt_xcoms(), reason=PER_ATTEMPT_REASON)


def own_write(dag_id: str, value: Any, ti_id: uuid.UUID, key: str = "k") -> str:
    """What Airflow 3.4's push of a task instance's own XCom stores in its row."""
    from airflow.sdk.bases.xcom import XComCoordinate  # type: ignore[attr-defined]

    coordinate = XComCoordinate(dag_id, RUN, "t", ti_id, None, None)
    return ExclusiveRedisXCom.store_value(coordinate, key, value)


def in_etl_task(load: Any) -> Any:
    """``load`` run while a task of etl runs (where a mapped input of etl is loaded)."""
    from airflow.sdk.execution_time.context import set_current_context

    def loaded(stored: Any) -> Any:
        ti = SimpleNamespace(dag_id="etl", run_id=RUN, task_id="consumer", map_index=-1, id=uuid.uuid4())
        with set_current_context({"ti": ti}):  # type: ignore[typeddict-item]
            return load(stored)

    return loaded


@per_attempt
def test_a_reference_built_from_coordinates_alone_never_loads(
    fake_redis: fakeredis.FakeRedis, execution_api: ExecutionAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a user denied payroll can build without its task instance ids: the 3.0-3.3 form of its
    coordinates (which still names a value written before the upgrade), or any id of their choosing."""
    from redis_xcom.runtime import get_runtime as runtime

    real = own_write("payroll", "salaries", uuid.uuid4())
    before_upgrade = push("old salaries", dag_id="payroll", key="k")  # the 3.0-3.3 form, still in Redis
    prefix = runtime().settings.key_prefix
    tag = keys.run_tag(prefix, "payroll", RUN)
    forged = [
        before_upgrade,
        f"redis-xcom://{tag}:t:-1:k:{keys.task_instance_of(uuid.uuid4())}",
        f"redis-xcom://{tag}:t:_:k:{keys.new_write()}",
        f"redis-xcom://{tag}:t:-1:k:*",
    ]
    loads = [
        ExclusiveRedisXCom.load_value,  # a row known by nothing but its value
        lambda stored: ExclusiveRedisXCom._load_many([stored]),
        in_etl_task(load_mapped_input),  # a mapped input of etl
        lambda stored: pull_row("get_one"),  # etl's row, as xcom_pull reads it
    ]
    spy = ReadSpy(monkeypatch)
    for reference in forged:
        execution_api.rows[("etl", RUN, "t", -1, "k")] = reference
        for load in loads:
            with pytest.raises(RedisXComError) as raised:
                load(reference)
            assert "salaries" not in str(raised.value), reference
    assert redis_key_of(before_upgrade) not in spy.keys, "the 3.0-3.3 form is refused before anything is read"
    # payroll's own rows still load: its task instance's reference anywhere, the old form with its row.
    execution_api.rows[("payroll", RUN, "t", -1, "k")] = before_upgrade
    assert pull_row("get_one", dag_id="payroll") == "old salaries"
    assert ExclusiveRedisXCom.load_value(real) == "salaries"


@per_attempt
def test_a_retry_row_naming_the_first_trys_value_never_purges_it(
    fake_redis: fakeredis.FakeRedis, execution_api: ExecutionAPI
) -> None:
    """Try 2's row edited to name try 1's value: the retry's start (and try 2 itself) leaves try 1's
    value, which its archived row still shows; try 2's own value goes with try 2's row."""
    from airflow.sdk.execution_time.context import set_current_context

    first, second = uuid.uuid4(), uuid.uuid4()
    try1 = own_write("etl", "try1", first)
    try2 = own_write("etl", "try2", second)
    execution_api.rows[("etl", RUN, "t", -1, "k")] = try1
    ExclusiveRedisXCom.delete("k", "t", "etl", RUN, map_index=-1)  # the retry's start: keys_to_clear
    running_try2 = SimpleNamespace(dag_id="etl", run_id=RUN, task_id="t", map_index=-1, id=second)
    with set_current_context({"ti": running_try2}):  # type: ignore[typeddict-item]
        execution_api.rows[("etl", RUN, "t", -1, "k")] = try1
        ExclusiveRedisXCom.delete("k", "t", "etl", RUN)
        assert ExclusiveRedisXCom.load_value(try1) == "try1", "try 1's history is intact"
        execution_api.rows[("etl", RUN, "t", -1, "k")] = try2
        ExclusiveRedisXCom.delete("k", "t", "etl", RUN)
    assert not fake_redis.exists(redis_key_of(try2)), "try 2's own value went with its row"
