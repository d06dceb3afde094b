"""A small DAG for the gc tests: each run leaves four XComs in Redis (three rows, one mapped pair)."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task


@dag(dag_id="gc_dag", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def gc_dag() -> None:
    @task
    def numbers() -> list[int]:
        return [1, 2]

    @task
    def double(n: int) -> int:
        return 2 * n

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    total(double.expand(n=numbers()))


gc_dag()
