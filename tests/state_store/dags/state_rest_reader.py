"""Reads asset state whose rows the REST tests forged (tests/test_state_store_rest.py): prints what it got."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Asset, task

ORDERS = Asset(name="state_rest_orders", uri="s3://state-rest/orders")
KEYS = ("watermark", "forged_task_ref", "forged_asset_ref")

with DAG(dag_id="state_rest_reader", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):

    @task(inlets=[ORDERS])
    def read(asset_state_store=None):
        for key in KEYS:
            try:
                print(f"STATE-READ {key} {asset_state_store[ORDERS].get(key)!r}")
            except Exception as exc:  # what a refused reference raises, by name
                print(f"STATE-REFUSED {key} {type(exc).__name__}")

    read()
