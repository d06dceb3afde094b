"""The xcom table of Airflow's metadata DB, read through Airflow's own session and XComModel in batches.

Airflow's settings give the engine ([database] sql_alchemy_conn), exactly as every Airflow
component uses it; nothing here opens a connection of its own. Nothing is loaded whole: lookups go
by batches of coordinates, and the walk of the table streams its rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from redis_xcom import keys

# Coordinates per lookup query: 5 bind parameters each, far below SQLite's and PostgreSQL's limits.
LOOKUP_BATCH = 500
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
        columns = (model.dag_id, model.run_id, model.task_id, model.map_index, model.key)
        found: set[str] = set()
        with self._session() as session:
            for start in range(0, len(coords), LOOKUP_BATCH):
                wanted = [tuple(c) for c in coords[start : start + LOOKUP_BATCH]]
                self.queries += 1
                rows = session.execute(select(model.value).where(tuple_(*columns).in_(wanted)))
                found.update(k for (value,) in rows if (k := keys.key_of_reference(value)) is not None)
        return found

    def references(self, prefix: str) -> Iterator[list[tuple[str, str]]]:
        from sqlalchemy import select

        model = self._model
        head = prefix + ":{"
        query = select(model.dag_id, model.value).execution_options(yield_per=STREAM_BATCH)
        with self._session() as session:
            for rows in session.execute(query).partitions():
                self.queries += 1
                found = ((dag_id, keys.key_of_reference(value)) for dag_id, value in rows)
                yield [(dag_id, k) for dag_id, k in found if k is not None and k.startswith(head)]
