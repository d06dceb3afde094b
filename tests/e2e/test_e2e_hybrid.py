"""dags/e2e_hybrid.py through `airflow dags test` with [redis_xcom] inline_max_bytes set: what stays in
the DB row, what goes to Redis, and that the consumers pulled every value exactly."""

from __future__ import annotations

import pytest

from redis_xcom import keys
from redis_xcom.rows import XComRow
from tests.e2e.conftest import E2E, describe
from tests.e2e.dags.e2e_hybrid import MAPPED_SIZES, SIZES, SUMMARY, THRESHOLD, exact_in_redis, text_of

pytestmark = pytest.mark.e2e

DAG_ID = "e2e_hybrid"


@pytest.fixture(scope="module")
def rows(e2e: E2E) -> list[XComRow]:
    result = e2e.home.dags_test(
        DAG_ID, env={"AIRFLOW__REDIS_XCOM__INLINE_MAX_BYTES": str(THRESHOLD)}, timeout=300
    )
    run = e2e.home.latest_run(DAG_ID)
    states = e2e.home.task_states(DAG_ID, run.run_id)
    assert result.ok and set(states.values()) == {"success"}, (states, describe(result))
    return e2e.home.xcoms(DAG_ID, run.run_id)


def stored(rows: list[XComRow], task_id: str, key: str = "return_value", map_index: int = -1) -> XComRow:
    (row,) = [r for r in rows if (r.task_id, r.key, r.map_index) == (task_id, key, map_index)]
    return row


def is_reference(row: XComRow) -> bool:
    return keys.key_of_reference(row.value) is not None


def test_values_at_and_below_the_threshold_are_in_the_db_row_above_in_redis(
    e2e: E2E, rows: list[XComRow]
) -> None:
    assert stored(rows, "sized", "below").value == text_of(SIZES["below"])
    assert stored(rows, "sized", "at").value == text_of(SIZES["at"])
    above = stored(rows, "sized", "above")
    assert is_reference(above) and e2e.value(above) == text_of(SIZES["above"])


def test_a_mapped_task_with_mixed_sizes_has_both_kinds_of_rows(e2e: E2E, rows: list[XComRow]) -> None:
    for index, length in enumerate(MAPPED_SIZES):
        row = stored(rows, "mapped", map_index=index)
        if length <= THRESHOLD:
            assert row.value == text_of(length), index
        else:
            assert is_reference(row) and e2e.value(row) == text_of(length), index
    # The consumer pulled them all, one by one and with one get_all, and checked them.
    assert stored(rows, "collect").value == {"mapped": len(MAPPED_SIZES), "checked": sorted(exact_in_redis())}


def test_small_values_the_default_cannot_keep_exactly_are_in_redis(e2e: E2E, rows: list[XComRow]) -> None:
    for name, value in exact_in_redis().items():
        row = stored(rows, "rich", name)
        assert is_reference(row), (name, row.value)
        pulled = e2e.value(row)
        assert pulled == value and type(pulled) is type(value), name


def test_redis_holds_exactly_the_referenced_values_with_their_ttl(e2e: E2E, rows: list[XComRow]) -> None:
    referenced = {keys.key_of_reference(r.value) for r in rows} - {None}
    # sized 'above', two map indexes, every rich value, large_result
    assert len(referenced) == 1 + 2 + len(exact_in_redis()) + 1
    assert e2e.run_keys(DAG_ID, rows[0].run_id) == referenced
    for redis_key in referenced:
        assert 0 < e2e.client.ttl(str(redis_key)) <= e2e.ttl
    assert stored(rows, "summary").value == SUMMARY
    assert is_reference(stored(rows, "large_result"))
