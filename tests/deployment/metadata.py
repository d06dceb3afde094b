"""Read what a deployment left in its PostgreSQL metadata DB (xcom.value is JSONB there)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis_xcom.ops.airflow_run import XComRow


@dataclass(frozen=True)
class TaskTry:
    """One task instance as the DB has it now: its latest try."""

    task_id: str
    map_index: int
    state: str | None
    try_number: int
    operator: str | None

    @property
    def label(self) -> str:
        return self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"


class MetadataDB:
    """Read-only queries on one deployment's database; a fresh autocommit connection each time."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())
        finally:
            conn.close()

    def xcoms(self, dag_id: str, run_id: str) -> list[XComRow]:
        """The run's xcom rows; psycopg2 hands JSONB back already decoded."""
        found = self._rows(
            "SELECT task_id, map_index, key, value FROM xcom WHERE dag_id = %s AND run_id = %s "
            "ORDER BY task_id, map_index, key",
            (dag_id, run_id),
        )
        return [XComRow(dag_id, run_id, t, m, k, v, json.dumps(v)) for t, m, k, v in found]

    def task_tries(self, dag_id: str, run_id: str) -> list[TaskTry]:
        found = self._rows(
            "SELECT task_id, map_index, state, try_number, operator FROM task_instance "
            "WHERE dag_id = %s AND run_id = %s ORDER BY task_id, map_index",
            (dag_id, run_id),
        )
        return [TaskTry(*row) for row in found]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """`task_id` (`task_id[i]` for mapped ones) -> state."""
        return {t.label: t.state for t in self.task_tries(dag_id, run_id)}

    def tries_run(self) -> int:
        """How many task processes ran: every try (retries and re-runs too) that ended in a worker.
        EmptyOperator tasks never reach one (the scheduler finishes them itself)."""
        ((count,),) = self._rows(
            "SELECT count(*) FROM ("
            " SELECT state, operator FROM task_instance"
            " UNION ALL SELECT state, operator FROM task_instance_history"
            ") AS tries WHERE state IN ('success', 'failed', 'up_for_retry')"
            " AND coalesce(operator, '') <> 'EmptyOperator'"
        )
        return int(count)

    def xcom_value_column_type(self) -> str:
        ((data_type,),) = self._rows(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_name = 'xcom' AND column_name = 'value'"
        )
        return str(data_type)

    def xcom_json_types(self) -> list[tuple[str, str]]:
        """(key, JSON type of the stored value) for every xcom row of the deployment."""
        return [(k, t) for k, t in self._rows("SELECT key, jsonb_typeof(value) FROM xcom")]
