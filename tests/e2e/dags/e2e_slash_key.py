"""End-to-end DAG: one task pushes an XCom whose key holds '/'. Run by tests/e2e/test_e2e_limits.py
only on an Airflow whose execution API cannot route such a key (3.0), to record what happens."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import dag, task

SLASH_KEY = "sl/ash"


@dag(
    dag_id="e2e_slash_key",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 0},
    tags=["redis-xcom-e2e"],
)
def e2e_slash_key() -> None:
    @task
    def push_slash_key(ti: Any = None) -> None:
        ti.xcom_push(key=SLASH_KEY, value={"pushed": True})

    push_slash_key()


e2e_slash_key()
