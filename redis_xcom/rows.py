"""One xcom row as the metadata DB holds it: the one row type of the UI, the ops commands and tests.

What identifies a value is keys.XComCoordinates (read from its Redis key); what is known of the row
holding a reference is keys.RowCoordinates; ``XComRow.owned_key`` is keys.owned_key, the one
ownership check that pulls, purge, gc, clear and the UI make.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from redis_xcom import keys


@dataclass(frozen=True)
class XComRow:
    """One xcom row: whose it is, and its value (a reference, or Airflow's own value for a row that
    did not come through the backend), decoded; ``raw`` the stored JSON text where it was read.

    On Airflow 3.4 every attempt and loop iteration has rows of its own: ``task_instance_id`` and
    ``try_number`` say whose (None for rows from before 3.4), and ``map_index`` is the task
    instance's region index (its map index or loop iteration), as Airflow's XComModel shows it.
    """

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    key: str
    value: Any
    raw: str | None = None
    task_instance_id: uuid.UUID | str | None = None
    try_number: int | None = None

    def coordinates(self) -> keys.RowCoordinates:
        """Everything the reference check compares: the row as the metadata DB records it."""
        return keys.RowCoordinates(
            self.dag_id,
            self.run_id,
            self.task_id,
            self.key,
            map_index=self.map_index,
            task_instance_id=keys.as_uuid(self.task_instance_id),
            try_number=self.try_number,
        )

    def describe(self) -> str:
        return self.coordinates().describe()

    def owned_key(self, prefix: str) -> str | None:
        """The Redis key of the row's own value, or None when the row holds no reference.

        UntrustedReferenceError, naming the row, when its reference names anything but a value under
        ``prefix`` written for this very row (another DAG's value, another attempt's, a key that is no
        XCom): keys.owned_key, with every coordinate the row has.
        """
        return keys.owned_key(self.value, self.coordinates(), prefix)
