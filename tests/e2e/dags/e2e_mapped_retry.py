"""End-to-end DAG: a mapped task whose first try pushes an explicit key, fails, and succeeds on retry
without pushing that key again. Run by tests/e2e/test_e2e_mapped_retry.py, which checks that Redis
and the DB agree afterwards and what Airflow cleared on the retry (Airflow 3.0 differs from 3.1+).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
from airflow.sdk import dag, task

MAPPED_INPUT = [1, 2]


@dag(
    dag_id="e2e_mapped_retry",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 0},
    tags=["redis-xcom-e2e"],
)
def e2e_mapped_retry() -> None:
    @task(retries=1, retry_delay=dt.timedelta(seconds=0))
    def flaky_mapped(x: int, ti: Any = None) -> int:
        if ti.try_number == 1:
            ti.xcom_push(key="first_try_only", value={"x": x, "try": ti.try_number})
            raise RuntimeError(f"flaky_mapped[{ti.map_index}]: the first try fails on purpose")
        return x * 10

    @task
    def collect(values: Any) -> int:
        got = list(values)
        assert got == [x * 10 for x in MAPPED_INPUT], got
        return sum(got)

    collect(flaky_mapped.expand(x=MAPPED_INPUT))


e2e_mapped_retry()
