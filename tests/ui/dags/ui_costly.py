"""One task per hostile value of tests/ui/hostile.py, each pushing a placeholder: the UI server test
replaces each placeholder's bytes in Redis with the hostile value (its key is the row's own, so the
UI follows it), then asks the api-server to show it."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

# The names of tests.ui.hostile.HOSTILE (not imported: the DAG processor parses this file alone).
NAMES = ("string_view_frame", "string_view_table", "empty_maps", "colliding_keys", "u0_arrays")


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def ui_costly() -> None:
    for name in NAMES:

        @task(task_id=name)
        def placeholder() -> object:
            return {"placeholder": True}

        placeholder()


ui_costly()
