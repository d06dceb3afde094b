"""DAGs of the deployment tests: retries after a push, re-runs after a clear, and many small tasks.

The tasks record what they saw as XComs; tests/deployment reads them back from the DB and Redis.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pendulum
from airflow.sdk import dag, task

START = pendulum.datetime(2024, 1, 1, tz="UTC")
MAPPED = [0, 1, 2]
FANOUT = 12
NO_DELAY = dt.timedelta(seconds=0)


@dag(
    dag_id="deployment_retry", schedule=None, start_date=START, catchup=False, tags=["redis-xcom-deployment"]
)
def deployment_retry() -> None:
    """Each try 1 pushes a value and then fails; the retry pushes other keys (same_key: the same key
    too) and succeeds."""

    @task(retries=1, retry_delay=NO_DELAY)
    def flaky(ti: Any = None) -> Any:  # not dict[...]: that annotation implies multiple_outputs
        return _fail_first_try(ti)

    @task(retries=1, retry_delay=NO_DELAY)
    def flaky_mapped(x: int, ti: Any = None) -> Any:
        return {**_fail_first_try(ti), "x": x}

    @task(retries=1, retry_delay=NO_DELAY)
    def same_key(ti: Any = None) -> Any:
        """Both tries push key k (Airflow 3.4 keeps a row of each attempt); only try 1 pushes try1_only."""
        ti.xcom_push(key="k", value=f"try{ti.try_number}")
        if ti.try_number == 1:
            ti.xcom_push(key="try1_only", value={"written_by": "try1"})
            raise RuntimeError("deployment_retry: same_key's first try fails on purpose, after its pushes")
        return {"done_by": f"try{ti.try_number}"}

    @task
    def after_retries(single: Any, mapped: Any, same: Any, ti: Any = None) -> Any:
        """What a downstream task pulls: the retries' values, and any leftover of try 1."""
        return {
            "single": single,
            "mapped": list(mapped),
            "single_leftover": ti.xcom_pull(task_ids="flaky", key="first_try_only"),
            "mapped_leftover": ti.xcom_pull(task_ids="flaky_mapped", key="first_try_only"),
            "same_key": {
                "returned": same,
                "k": ti.xcom_pull(task_ids="same_key", key="k"),
                "try1_only": ti.xcom_pull(task_ids="same_key", key="try1_only"),
            },
        }

    after_retries(flaky(), flaky_mapped.expand(x=MAPPED), same_key())


def _fail_first_try(ti: Any) -> Any:
    if ti.try_number == 1:
        ti.xcom_push(key="first_try_only", value={"try": 1, "map_index": ti.map_index})
        raise RuntimeError("deployment_retry: the first try fails on purpose, after a push")
    ti.xcom_push(key="on_retry", value=ti.try_number)
    return {"try": ti.try_number}


@dag(
    dag_id="deployment_rerun", schedule=None, start_date=START, catchup=False, tags=["redis-xcom-deployment"]
)
def deployment_rerun() -> None:
    """Every try pushes a key named after it and a value unique to it: a re-run changes both."""

    @task
    def per_try(ti: Any = None) -> Any:
        return _push_per_try(ti)

    @task
    def per_try_mapped(x: int, ti: Any = None) -> Any:
        return {**_push_per_try(ti), "x": x}

    @task
    def consume(single: Any, mapped: Any) -> Any:
        return {"single": single, "mapped": list(mapped)}

    consume(per_try(), per_try_mapped.expand(x=MAPPED))


def _push_per_try(ti: Any) -> Any:
    ti.xcom_push(key=f"try_{ti.try_number}", value=ti.try_number)
    return {"try": ti.try_number, "token": uuid.uuid4().hex}


@dag(
    dag_id="deployment_fanout", schedule=None, start_date=START, catchup=False, tags=["redis-xcom-deployment"]
)
def deployment_fanout() -> None:
    """Many short task processes, each pushing and pulling: a per-process connection leak adds up."""

    @task
    def emit(i: int, ti: Any = None) -> Any:
        import os

        from redis_xcom import preload

        # Whose import of redis-py this task process has: an ancestor's (inherited) or its own.
        ti.xcom_push(key="preloaded", value={"by": preload.preloaded_by, "pid": os.getpid()})
        return {"i": i, "square": i * i}

    @task
    def total(values: Any) -> int:
        got = sorted(v["i"] for v in values)
        assert got == list(range(FANOUT)), got
        return sum(v["square"] for v in values)

    total(emit.expand(i=list(range(FANOUT))))


deployment_retry()
deployment_rerun()
deployment_fanout()
