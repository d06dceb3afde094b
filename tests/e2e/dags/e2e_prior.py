"""End-to-end DAG run twice: include_prior_dates across runs, and a pull of a value gone from Redis.

Run 1 (conf phase=1) pushes `marker` and `doomed`. The test then deletes `doomed`'s Redis key.
Run 2 (conf phase=2, later logical date) pushes nothing of those keys: `prior_reader` must find run 1's
`marker` with include_prior_dates, and `expired_reader` must fail with XComExpiredError.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import dag, task

MARKER = {"from": "run 1", "values": [1, 2, 3]}


@dag(
    dag_id="e2e_prior",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 0},
    tags=["redis-xcom-e2e"],
)
def e2e_prior() -> None:
    @task
    def producer(dag_run: Any = None, ti: Any = None) -> None:
        if dag_run.conf.get("phase") == 1:
            ti.xcom_push(key="marker", value=MARKER)
            ti.xcom_push(key="doomed", value="deleted from Redis before run 2")

    @task
    def prior_reader(dag_run: Any = None, ti: Any = None) -> Any:
        if dag_run.conf.get("phase") == 1:
            return {}
        this_run = ti.xcom_pull(task_ids="producer", key="marker")
        assert this_run is None, this_run
        prior = ti.xcom_pull(task_ids="producer", key="marker", include_prior_dates=True)
        assert prior == MARKER, prior
        prior_one = ti.xcom_pull(task_ids="producer", key="marker", include_prior_dates=True, map_indexes=-1)
        assert prior_one == MARKER, prior_one
        return {"this_run": this_run, "prior": prior, "prior_one": prior_one}

    @task
    def expired_reader(dag_run: Any = None, ti: Any = None) -> Any:
        if dag_run.conf.get("phase") == 1:
            return None
        # Run 1's value was deleted from Redis: this must raise XComExpiredError, not return None.
        return ti.xcom_pull(task_ids="producer", key="doomed", include_prior_dates=True, map_indexes=-1)

    producer() >> [prior_reader(), expired_reader()]


e2e_prior()
