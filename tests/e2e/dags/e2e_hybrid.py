"""End-to-end DAG for hybrid mode, run with [redis_xcom] inline_max_bytes = THRESHOLD: values at, just
below and just above the threshold, a mapped task with mixed sizes, and small values the default
backend cannot keep exactly; consumers assert what they pulled (a wrong value fails the run).

Run by tests/e2e/test_e2e_hybrid.py through `airflow dags test`, and by tests/e2e/test_e2e_wait.py on
a real api-server, where `/wait` returns the DAG's result (the `@result` task, Airflow 3.3+).
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable
from typing import Any

import pendulum
from airflow.sdk import dag, task

THRESHOLD = 256
# JSON text lengths: "x" * (n - 2) is n bytes of JSON.
SIZES = {"below": THRESHOLD - 1, "at": THRESHOLD, "above": THRESHOLD + 1}
MAPPED_SIZES = [10, 5000, 100, THRESHOLD + 1]
SUMMARY = {"status": "ok", "rows": 3, "path": "s3://bucket/out/part-0.parquet", "ratio": 0.25}


def exact_in_redis() -> dict[str, Any]:
    """Small values (far below the threshold) Airflow's default backend would not give back exactly."""
    return {
        "tuple": (1, "two"),
        "decimal": decimal.Decimal("0.1000000000000000000001"),
        "datetime": dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc),
        "bytes": b"\x00\xff",
        "non_str_keys": {1: "one"},
    }


def text_of(length: int) -> str:
    return "x" * (length - 2)


try:  # @result marks a DAG's result (Airflow 3.3+); before, the task is a plain task.
    from airflow.sdk import result
except ImportError:

    def result(t: Callable[..., Any]) -> Callable[..., Any]:  # type: ignore[no-redef]
        return t


@dag(
    dag_id="e2e_hybrid",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 0},
    tags=["redis-xcom-e2e"],
)
def e2e_hybrid() -> None:
    @task
    def sized(ti: Any = None) -> None:
        for name, length in SIZES.items():
            ti.xcom_push(key=name, value=text_of(length))

    @task
    def rich(ti: Any = None) -> None:
        for name, value in exact_in_redis().items():
            ti.xcom_push(key=name, value=value)

    @task
    def mapped(length: int) -> str:
        return text_of(length)

    @task
    def collect(values: Any, ti: Any = None) -> dict[str, Any]:
        got = list(values)  # the mapped output consumed downstream, one item at a time
        assert got == [text_of(n) for n in MAPPED_SIZES], [len(v) for v in got]
        # One pull over every map index (get_all): inline and Redis values together.
        assert ti.xcom_pull(task_ids="mapped") == got
        for name, length in SIZES.items():
            assert ti.xcom_pull(task_ids="sized", key=name) == text_of(length), name
        for name, value in exact_in_redis().items():
            pulled = ti.xcom_pull(task_ids="rich", key=name)
            assert pulled == value and type(pulled) is type(value), (name, pulled)
        return {"mapped": len(got), "checked": sorted(exact_in_redis())}

    @result
    @task
    def summary() -> dict[str, Any]:
        return SUMMARY

    @task
    def large_result() -> str:
        return text_of(THRESHOLD * 4)

    checked = collect(mapped.expand(length=MAPPED_SIZES))
    [sized(), rich()] >> checked
    checked >> [summary(), large_result()]


e2e_hybrid()
