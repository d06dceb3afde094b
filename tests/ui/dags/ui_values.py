"""XComs of the kinds the UI plugin previews, for its browser test (run with `airflow dags test`)."""

from __future__ import annotations

import datetime
import decimal

import pendulum
from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False, tags=["redis-xcom"])
def ui_values() -> None:
    @task
    def weather() -> object:
        import pandas as pd

        return pd.DataFrame(
            {"city": ["Lisbon", "Oslo", "Nairobi", "Lima"], "temp_c": [21.5, -3.0, 24.25, 18.0]}
        )

    @task(multiple_outputs=True)
    def summary() -> dict[str, object]:
        return {
            "report": {"rows": 4, "source": "<script>alert('xss')</script>"},
            "when": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
            "total": decimal.Decimal("63.75"),
        }

    @task
    def blob() -> bytes:
        return b"PK\x03\x04" + bytes(range(64))

    weather()
    summary()
    blob()


ui_values()
