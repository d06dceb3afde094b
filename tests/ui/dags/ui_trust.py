"""A task with a value of its own, whose XComs the UI test then joins with forged rows (REST API)."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def ui_trust() -> None:
    @task
    def extract() -> object:
        return {"mine": 1}

    extract()


ui_trust()
