"""Read what a deployment left in its PostgreSQL metadata DB (xcom values are JSONB there).

Both layouts, told apart by the tables the DB has, never by Airflow's version: Airflow 3.0 to 3.3
keep one `xcom` table and one task_instance row per task (earlier tries in task_instance_history);
Airflow 3.4 makes every attempt a task instance of its own (`working_set` true for the live one,
NULL for the archived ones), keeps XCom rows per task instance in `xcom_v2` and the rows from before
the upgrade in `xcom_v1`, and names a task instance's map index `region_index`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis_xcom.rows import XComRow


@dataclass(frozen=True)
class TaskTry:
    """One task instance as the DB has it now: its latest try (the live attempt on 3.4), or with
    `attempts`, one of its attempts."""

    task_id: str
    map_index: int
    state: str | None
    try_number: int
    operator: str | None
    id: str | None = None  # the task instance id (3.4: every attempt its own)
    archived: bool = False  # 3.4: an earlier attempt, kept as history

    @property
    def label(self) -> str:
        return self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"


class MetadataDB:
    """Read-only queries on one deployment's database; a fresh autocommit connection each time."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self._per_attempt: bool | None = None

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())
        finally:
            conn.close()

    def has_table(self, name: str) -> bool:
        ((found,),) = self._rows("SELECT to_regclass(%s) IS NOT NULL", (name,))
        return bool(found)

    def row_count(self, table: str) -> int:
        """Rows of one of Airflow's tables (a name from the tests, never from a user)."""
        ((count,),) = self._rows(f"SELECT count(*) FROM {table}")
        return int(count)

    def per_attempt(self) -> bool:
        """Whether this DB keeps XCom rows per attempt (Airflow 3.4: table xcom_v2)."""
        if self._per_attempt is None:
            self._per_attempt = self.has_table("xcom_v2")
        return self._per_attempt

    def xcoms(self, dag_id: str, run_id: str, *, live: bool = False) -> list[XComRow]:
        """The run's xcom rows, every attempt's on 3.4 (with `live`, only the live attempts' and those
        from before the upgrade); psycopg2 hands JSONB back already decoded."""
        if self.per_attempt():
            only_live = " AND ti.working_set IS TRUE" if live else ""
            found = self._rows(
                "SELECT ti.task_id, ti.region_index, x.key, x.value, ti.id::text, ti.try_number "
                "FROM xcom_v2 x JOIN task_instance ti ON x.task_instance_id = ti.id "
                f"WHERE ti.dag_id = %s AND ti.run_id = %s{only_live} "
                "UNION ALL SELECT task_id, map_index, key, value, NULL, NULL FROM xcom_v1 "
                "WHERE dag_id = %s AND run_id = %s ORDER BY 1, 2, 3, 6",
                (dag_id, run_id, dag_id, run_id),
            )
        else:
            found = self._rows(
                "SELECT task_id, map_index, key, value, NULL, NULL FROM xcom "
                "WHERE dag_id = %s AND run_id = %s ORDER BY task_id, map_index, key",
                (dag_id, run_id),
            )
        return [XComRow(dag_id, run_id, t, m, k, v, json.dumps(v), i, n) for t, m, k, v, i, n in found]

    def task_tries(self, dag_id: str, run_id: str, *, attempts: bool = False) -> list[TaskTry]:
        """The run's task instances: the live attempt of each (with `attempts`, the archived ones too
        on 3.4), ordered by task, map index and try."""
        if self.per_attempt():
            live = "" if attempts else " AND working_set IS TRUE"
            columns = "region_index, state, try_number, operator, id::text, working_set IS NULL"
        else:
            live, columns = "", "map_index, state, try_number, operator, NULL, FALSE"
        found = self._rows(
            f"SELECT task_id, {columns} FROM task_instance WHERE dag_id = %s AND run_id = %s{live} "
            "ORDER BY 1, 2, 4",
            (dag_id, run_id),
        )
        return [TaskTry(*row) for row in found]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """`task_id` (`task_id[i]` for mapped ones) -> state of its live attempt."""
        return {t.label: t.state for t in self.task_tries(dag_id, run_id)}

    def tries_run(self) -> int:
        """How many task processes ran: every try (retries and re-runs too) that ended in a worker.
        EmptyOperator tasks never reach one (the scheduler finishes them itself). On 3.4 every try is
        a task_instance row (an archived retry ends as failed); before, earlier tries are in
        task_instance_history."""
        tries = (
            "task_instance"
            if self.per_attempt()
            else "(SELECT state, operator FROM task_instance"
            " UNION ALL SELECT state, operator FROM task_instance_history)"
        )
        ((count,),) = self._rows(
            f"SELECT count(*) FROM {tries} AS tries WHERE state IN ('success', 'failed', 'up_for_retry')"
            " AND coalesce(operator, '') <> 'EmptyOperator'"
        )
        return int(count)

    def xcom_tables(self) -> list[str]:
        """The tables holding XCom rows: `xcom`, or on 3.4 `xcom_v2` and the legacy `xcom_v1`."""
        return ["xcom_v2", "xcom_v1"] if self.per_attempt() else ["xcom"]

    def xcom_value_column_type(self) -> str:
        """The type of the value column of every XCom table (one, or what differs)."""
        types = {
            str(data_type)
            for table in self.xcom_tables()
            for (data_type,) in self._rows(
                "SELECT data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = %s AND column_name = 'value'",
                (table,),
            )
        }
        return types.pop() if len(types) == 1 else str(sorted(types))

    def xcom_json_types(self) -> list[tuple[str, str]]:
        """(key, JSON type of the stored value) for every xcom row of the deployment."""
        union = " UNION ALL ".join(f"SELECT key, jsonb_typeof(value) FROM {t}" for t in self.xcom_tables())
        return [(k, t) for k, t in self._rows(union)]
