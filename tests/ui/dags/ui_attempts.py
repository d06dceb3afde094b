"""A task whose two tries push the same key (and a key only the failed first try pushes): on Airflow
3.4 each try keeps its rows, and the UI shows each try's own values."""

from __future__ import annotations

import datetime
from typing import Any

import pendulum
from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def ui_attempts() -> None:
    @task(retries=1, retry_delay=datetime.timedelta(seconds=0))
    def flaky(ti: Any = None) -> object:  # not dict[...]: that would push each key as well
        ti.xcom_push(key="k", value=f"try{ti.try_number}")
        if ti.try_number == 1:
            ti.xcom_push(key="partial", value={"written_by": "try1"})
            raise RuntimeError("the first try fails on purpose")
        return {"done_by": f"try{ti.try_number}"}

    flaky()


ui_attempts()
