"""dags/e2e_mapped_retry.py: a retried mapped task, and what its failed first try leaves behind.

On a retry Airflow clears the XComs the task already has, through the backend's purge. Airflow 3.0
does it without map_index, so for a mapped task nothing is cleared: the first try's rows and their
Redis values both survive (Airflow's behaviour, not ours). On every version Redis and the DB must
agree: no value in Redis without a row, no row without its value.
"""

from __future__ import annotations

import pytest

from redis_xcom.ops.airflow_run import CommandResult
from tests.airflow_limits import (
    MAPPED_RETRY_REASON,
    per_attempt_xcoms,
    plain_text,
    retry_clears_mapped_xcoms,
)
from tests.e2e.conftest import E2E, describe

pytestmark = pytest.mark.e2e

DAG_ID = "e2e_mapped_retry"
MAPPED_INPUT = [1, 2]


@pytest.fixture(scope="module")
def run(e2e: E2E) -> tuple[str, CommandResult]:
    result = e2e.home.dags_test(DAG_ID, timeout=300)
    return e2e.home.latest_run(DAG_ID).run_id, result


def test_each_map_index_fails_once_then_succeeds(e2e: E2E, run: tuple[str, CommandResult]) -> None:
    run_id, result = run
    tries = {
        ti.map_index: (ti.state, ti.try_number)
        for ti in e2e.home.task_instances(DAG_ID, run_id)
        if ti.task_id == "flaky_mapped"
    }
    assert tries == {i: ("success", 2) for i in range(len(MAPPED_INPUT))}, describe(result)
    assert result.ok, describe(result)
    assert "flaky_mapped[1]: the first try fails on purpose" in plain_text(result.output)


def test_redis_and_the_db_agree_after_the_retries(e2e: E2E, run: tuple[str, CommandResult]) -> None:
    run_id, result = run
    rows = e2e.assert_db_and_redis_agree(DAG_ID, run_id)
    returned = {
        r.map_index: e2e.value(r) for r in rows if (r.task_id, r.key) == ("flaky_mapped", "return_value")
    }
    assert returned == {i: x * 10 for i, x in enumerate(MAPPED_INPUT)}, describe(result)


def test_what_the_retry_cleared_of_the_first_try(e2e: E2E, run: tuple[str, CommandResult]) -> None:
    run_id, _ = run
    leftover = [r for r in e2e.home.xcoms(DAG_ID, run_id) if r.key == "first_try_only"]
    left_in_redis = sorted(k for k in e2e.run_keys(DAG_ID, run_id) if ":first_try_only" in k)
    if per_attempt_xcoms():
        # 3.4 keeps each first try's rows as history, each with its own value.
        assert [(r.map_index, r.try_number) for r in leftover] == [(i, 1) for i in range(len(MAPPED_INPUT))]
        assert [e2e.value(r) for r in leftover] == [{"x": x, "try": 1} for x in MAPPED_INPUT]
        assert left_in_redis == sorted(r.value.removeprefix("redis-xcom://") for r in leftover)
        return
    if retry_clears_mapped_xcoms():
        assert (leftover, left_in_redis) == ([], [])
        return
    # MAPPED_RETRY_REASON: each row stays, and so does the Redis value it refers to.
    assert [r.map_index for r in leftover] == list(range(len(MAPPED_INPUT))), MAPPED_RETRY_REASON
    assert [e2e.value(r) for r in leftover] == [{"x": x, "try": 1} for x in MAPPED_INPUT]
    assert len(left_in_redis) == len(MAPPED_INPUT)
