"""The xcom table of Airflow's metadata DB, read through Airflow's own session and XComModel in batches.

Airflow's settings give the engine ([database] sql_alchemy_conn), exactly as every Airflow
component uses it; nothing here opens a connection of its own. Nothing is loaded whole: lookups go
by batches of coordinates, and the walk of the table streams its rows.

On Airflow 3.4 XComModel is a read-only projection over ``xcom_v1`` (rows from before the upgrade)
and ``xcom_v2`` (one row per task instance: every attempt and loop iteration), and ORM queries see
only the live attempt unless asked for all (``include_all_attempts``): gc asks, so an earlier
attempt's rows keep their values. Older Airflows ignore the option.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from redis_xcom import keys

# Coordinates per lookup query: 4 bind parameters each, far below SQLite's and PostgreSQL's limits.
LOOKUP_BATCH = 500
# Every attempt's rows (3.4 archives earlier attempts and hides them from ORM queries by default).
_ALL_ATTEMPTS = {"include_all_attempts": True}
STREAM_BATCH = 1000


class XComTable(Protocol):
    def referenced(self, coords: Sequence[keys.XComCoordinates]) -> set[str]:
        """The Redis keys that rows at these coordinates refer to."""
        ...

    def references(self, prefix: str) -> Iterator[list[tuple[str, str]]]:
        """Batches of (dag_id, redis key) of every row referring to a key under prefix."""
        ...


class AirflowXComTable:
    """XComTable over Airflow's metadata DB."""

    def __init__(self) -> None:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        self._model = XComModel
        self._session = create_session
        self.queries = 0

    def referenced(self, coords: Sequence[keys.XComCoordinates]) -> set[str]:
        from sqlalchemy import select, tuple_

        model = self._model
        # Not the map index: a 3.4 write through coordinates does not know it. The keys compared
        # afterwards are exact, so the rows of other map indexes only cost their transfer.
        columns = (model.dag_id, model.run_id, model.task_id, model.key)
        tasks = sorted({(c.dag_id, c.run_id, c.task_id, c.key) for c in coords})
        found: set[str] = set()
        with self._session() as session:
            for start in range(0, len(tasks), LOOKUP_BATCH):
                wanted = tasks[start : start + LOOKUP_BATCH]
                self.queries += 1
                query = select(model.value).where(tuple_(*columns).in_(wanted))
                rows = session.execute(query.execution_options(**_ALL_ATTEMPTS))
                found.update(k for (value,) in rows if (k := keys.key_of_reference(value)) is not None)
        return found

    def references(self, prefix: str) -> Iterator[list[tuple[str, str]]]:
        from sqlalchemy import select

        model = self._model
        query = select(model.dag_id, model.value).execution_options(yield_per=STREAM_BATCH, **_ALL_ATTEMPTS)
        with self._session() as session:
            for rows in session.execute(query).partitions():
                self.queries += 1
                found = ((dag_id, keys.key_of_reference(value)) for dag_id, value in rows)
                # A reference that is not to one of our values is not probed (rows are user input).
                yield [
                    (dag, k) for dag, k in found if k is not None and keys.parse_key(k, prefix) is not None
                ]
