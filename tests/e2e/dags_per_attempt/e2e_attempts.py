"""A task whose two tries push the same key, and a key only its failed first try pushes.

Airflow 3.4 keeps each attempt's rows; each must resolve to that attempt's own value.
"""

from __future__ import annotations

import datetime

from airflow.sdk import dag, task


@dag(schedule=None, start_date=datetime.datetime(2024, 1, 1), catchup=False)
def e2e_attempts():
    @task(retries=1, retry_delay=datetime.timedelta(seconds=0))
    def flaky(ti=None):
        ti.xcom_push(key="k", value=f"try{ti.try_number}")
        if ti.try_number == 1:
            ti.xcom_push(key="partial", value={"written_by": "try1"})
            raise RuntimeError("the first try fails on purpose")
        return {"done_by": f"try{ti.try_number}"}

    @task
    def read(ti=None):
        return {"k": ti.xcom_pull(task_ids="flaky", key="k"), "returned": ti.xcom_pull(task_ids="flaky")}

    flaky() >> read()


e2e_attempts()
