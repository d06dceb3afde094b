"""A row's reference is user input (REST POST/PATCH xcomEntries, the UI, DAG code): the backend's paths.

A reference naming a key outside key_prefix, or a value that is not the row's own, is never read,
deleted or probed. (The UI plugin's page has its own tests in tests/ui.)
"""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import fakeredis
import pytest

from redis_xcom import ExclusiveRedisXCom
from redis_xcom.errors import UntrustedReferenceError
from redis_xcom.keys import run_index_key

RUN = "r1"


def push(value: Any, *, dag_id: str = "etl", task_id: str = "t", key: str = "k") -> str:
    return ExclusiveRedisXCom.serialize_value(value, key=key, task_id=task_id, dag_id=dag_id, run_id=RUN)


FOREIGN_KEYS = ["celery", "session:admin", "billing:{etl/r1}:t:-1:k"]


@pytest.mark.parametrize("foreign", FOREIGN_KEYS)
def test_a_pull_of_a_forged_reference_raises_naming_the_row_and_reads_nothing(
    fake_redis: fakeredis.FakeRedis, foreign: str
) -> None:
    fake_redis.set(foreign, b"secret")
    with pytest.raises(UntrustedReferenceError, match=r"XCom row with key 'k'.*Delete or correct the row"):
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
    from redis_xcom.backend import runtime

    prefix = runtime().settings.key_prefix
    own = push("mine")
    planted = "billing:{etl/r1}:t:-1:k"
    fake_redis.set(planted, b"billing data")
    fake_redis.sadd(run_index_key(prefix, "etl", RUN), planted)
    assert ExclusiveRedisXCom.clear(dag_id="etl", run_id=RUN) == 1
    assert fake_redis.get(planted) == b"billing data"
    assert not fake_redis.exists(own.removeprefix("redis-xcom://"))
