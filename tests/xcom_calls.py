"""Push and pull through the backend as Airflow's task runner calls it, for tests."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from redis_xcom import ExclusiveRedisXCom
from redis_xcom.keys import REFERENCE_SCHEME, RowCoordinates, parse_key


def push(value: Any, *, dag_id: str = "etl", run_id: str = "r1", task_id: str = "t", map_index: int = -1,
         key: str = "return_value") -> Any:  # fmt: skip
    """XCom.set's call: returns what the DB row would hold."""
    return ExclusiveRedisXCom.serialize_value(
        value, key=key, task_id=task_id, dag_id=dag_id, run_id=run_id, map_index=map_index
    )


def pull(reference: Any) -> Any:
    """XCom.get_one's call on a DB row holding reference."""
    return ExclusiveRedisXCom.deserialize_value(SimpleNamespace(value=reference))


def own_coordinates(reference: str) -> RowCoordinates:
    """The coordinates of the xcom row the backend wrote a reference for: its value's own."""
    coords = parse_key(redis_key(reference))
    assert coords is not None, reference
    return RowCoordinates(
        coords.dag_id,
        coords.run_id,
        coords.task_id,
        coords.key,
        coords.map_index,
        task_instance_id=coords.task_instance_id,
    )


def own_row(reference: str) -> SimpleNamespace:
    """That row, as a DB row carries it (purge deletes only a value it can confirm is the row's own)."""
    return SimpleNamespace(**own_coordinates(reference)._asdict(), value=reference)


def redis_key(reference: str) -> str:
    return reference.removeprefix(REFERENCE_SCHEME)


def value_keys(client: Any, pattern: str = "*") -> set[str]:
    """The XCom value keys matching pattern, without the runs' index sets."""
    found = (k.decode() if isinstance(k, bytes) else k for k in client.scan_iter(match=pattern, count=1000))
    return {k for k in found if parse_key(k) is not None}
