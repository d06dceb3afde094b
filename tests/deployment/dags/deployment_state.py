"""The state store (Airflow 3.3+) in the deployment tests: a retry reattaches to what its first try stored.

Try 1 stores a job id in task state and fails; try 2 reads it back and returns it with the asset
watermark it advanced, so tests/deployment/checks.py can compare the return value with what Redis holds.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pendulum
from airflow.sdk import Asset, dag, task

START = pendulum.datetime(2024, 1, 1, tz="UTC")
WAREHOUSE = Asset(name="deployment_state_warehouse", uri="s3://deployment-state/warehouse")


@dag(
    dag_id="deployment_state", schedule=None, start_date=START, catchup=False, tags=["redis-xcom-deployment"]
)
def deployment_state() -> None:
    @task(retries=1, retry_delay=dt.timedelta(seconds=0), outlets=[WAREHOUSE])
    def reattach(task_state_store: Any = None, asset_state_store: Any = None, ti: Any = None) -> Any:
        job_id = task_state_store.get("job_id")
        if job_id is None:
            task_state_store.set("job_id", f"job-{uuid.uuid4().hex[:8]}")
            raise RuntimeError("first try: the job id is stored, the retry reattaches to it")
        watermark = asset_state_store[WAREHOUSE]
        watermark.set("runs", (watermark.get("runs") or 0) + 1)
        task_state_store.set("status", "done")
        return {"job_id": job_id, "try": ti.try_number, "runs": watermark.get("runs")}

    reattach()


deployment_state()
