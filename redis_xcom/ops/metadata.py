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

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from redis_xcom import keys
from redis_xcom.errors import UntrustedReferenceError

# Coordinates per lookup query: 4 bind parameters each, far below SQLite's and PostgreSQL's limits.
LOOKUP_BATCH = 500
# Every attempt's rows (3.4 archives earlier attempts and hides them from ORM queries by default).
_ALL_ATTEMPTS = {"include_all_attempts": True}
STREAM_BATCH = 1000


class XComTable(Protocol):
    def referenced(self, coords: Sequence[keys.XComCoordinates], prefix: str) -> set[str]:
        """The Redis keys under prefix that rows at these coordinates refer to as their own value."""
        ...

    def references(self) -> Iterator[list[tuple[keys.RowCoordinates, object]]]:
        """Batches of (row coordinates, stored value) of every row: gc checks each reference itself."""
        ...


class AirflowXComTable:
    """XComTable over Airflow's metadata DB."""

    def __init__(self) -> None:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        self._model = XComModel
        self._session = create_session
        self.queries = 0

    def referenced(self, coords: Sequence[keys.XComCoordinates], prefix: str) -> set[str]:
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
                query = select(*self._row_columns()).where(tuple_(*columns).in_(wanted))
                rows = session.execute(query.execution_options(**_ALL_ATTEMPTS))
                # A row keeps alive only its own value, not whatever its (user-writable) value names.
                found.update(k for row, value in self._rows(rows) if (k := _own_key(value, row, prefix)))
        return found

    def references(self) -> Iterator[list[tuple[keys.RowCoordinates, object]]]:
        from sqlalchemy import select

        query = select(*self._row_columns()).execution_options(yield_per=STREAM_BATCH, **_ALL_ATTEMPTS)
        with self._session() as session:
            for rows in session.execute(query).partitions():
                self.queries += 1
                yield list(self._rows(rows))

    def _row_columns(self) -> list[Any]:
        """Every coordinate of a row the reference check compares, then its value. Airflow 3.4's rows
        name their task instance (xcom_v1's through their owner); older ones have no such column."""
        model = self._model
        columns = [model.dag_id, model.run_id, model.task_id, model.key, model.map_index]
        return [*columns, getattr(model, "task_instance_id", None) or literal_none(), model.value]

    @staticmethod
    def _rows(rows: Iterable[Any]) -> Iterator[tuple[keys.RowCoordinates, object]]:
        for dag_id, run_id, task_id, key, map_index, task_instance_id, value in rows:
            ids = keys.as_uuid(task_instance_id)
            yield keys.RowCoordinates(dag_id, run_id, task_id, key, map_index, task_instance_id=ids), value


def literal_none() -> Any:
    """A NULL column where a model has none to select (a task instance id before Airflow 3.4)."""
    from sqlalchemy import null

    return null()


def _own_key(value: object, row: keys.RowCoordinates, prefix: str) -> str | None:
    """The key of the row's own value, None for any other (rows are user input)."""
    try:
        return keys.owned_key(value, row, prefix)
    except UntrustedReferenceError:
        return None
