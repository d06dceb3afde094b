"""Writes task state and the state of two assets, for the REST tests (tests/test_state_store_rest.py)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Asset, task

ORDERS = Asset(name="state_rest_orders", uri="s3://state-rest/orders")
PAYROLL = Asset(name="state_rest_payroll", uri="s3://state-rest/payroll")
SECRET = "payroll-secret-7f3a"  # asset PAYROLL's value that no reader of ORDERS may see

with DAG(dag_id="state_rest_writer", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):

    @task(outlets=[ORDERS, PAYROLL])
    def write(task_state_store=None, asset_state_store=None):
        task_state_store.set("job_id", "job-42")
        task_state_store.set("cursor", {"page": 3, "token": "abc"})
        asset_state_store[ORDERS].set("watermark", "2026-01-02T00:00:00+00:00")
        asset_state_store[PAYROLL].set("secret", SECRET)

    write()
