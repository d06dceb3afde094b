"""A DAG nobody may read in the UI tests (tests.ui.auth_manager.DENIED_DAG): its value must never show
through a row of another DAG that names it."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

SECRET = "salary of the CEO: 7654321"


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def payroll() -> None:
    @task
    def salaries() -> str:
        return SECRET

    salaries()


payroll()
