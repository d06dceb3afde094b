"""dags/e2e_prior.py run twice: include_prior_dates across runs, and a value deleted from Redis."""

from __future__ import annotations

import pytest

from redis_xcom import keys
from redis_xcom.ops.airflow_run import CommandResult
from tests.airflow_limits import plain_text
from tests.e2e.conftest import E2E, describe

pytestmark = pytest.mark.e2e

DAG_ID = "e2e_prior"
MARKER = {"from": "run 1", "values": [1, 2, 3]}


@pytest.fixture(scope="module")
def runs(e2e: E2E) -> tuple[str, str, CommandResult]:
    first = e2e.home.dags_test(DAG_ID, "2024-01-01T00:00:00+00:00", conf={"phase": 1}, timeout=300)
    assert first.ok, describe(first)
    run1 = e2e.home.latest_run(DAG_ID).run_id
    e2e.assert_db_and_redis_agree(DAG_ID, run1)
    # As if the TTL had run out: the row stays, the value is gone.
    doomed = [r for r in e2e.home.xcoms(DAG_ID, run1) if r.key == "doomed"]
    assert len(doomed) == 1, doomed
    doomed_key = keys.key_of_reference(doomed[0].value)
    assert doomed_key is not None and e2e.client.delete(doomed_key) == 1
    second = e2e.home.dags_test(DAG_ID, "2024-01-02T00:00:00+00:00", conf={"phase": 2}, timeout=300)
    run2 = e2e.home.latest_run(DAG_ID).run_id
    assert run1 != run2
    return run1, run2, second


def test_include_prior_dates_finds_the_earlier_runs_value(
    e2e: E2E, runs: tuple[str, str, CommandResult]
) -> None:
    _, run2, second = runs
    states = e2e.home.task_states(DAG_ID, run2)
    assert states["prior_reader"] == "success", describe(second)
    seen = [
        r for r in e2e.home.xcoms(DAG_ID, run2) if r.task_id == "prior_reader" and r.key == "return_value"
    ]
    assert e2e.value(seen[0]) == {"this_run": None, "prior": MARKER, "prior_one": MARKER}
    e2e.assert_db_and_redis_agree(DAG_ID, run2)


def test_pull_of_a_value_gone_from_redis_fails_with_xcom_expired_error(
    e2e: E2E, runs: tuple[str, str, CommandResult]
) -> None:
    _, run2, second = runs
    states = e2e.home.task_states(DAG_ID, run2)
    assert states["expired_reader"] == "failed", describe(second)
    assert not second.ok and e2e.home.latest_run(DAG_ID).state == "failed"
    log = plain_text(second.output)
    assert "XComExpiredError" in log, describe(second)
    assert "is referenced by the metadata DB but its value is gone from Redis" in log
    # The failed task pushed nothing; run 1's row is untouched (only Redis lost the value).
    assert not [r for r in e2e.home.xcoms(DAG_ID, run2) if r.task_id == "expired_reader"]
    run1_keys = {r.key for r in e2e.home.xcoms(DAG_ID, runs[0])}
    assert {"marker", "doomed"} <= run1_keys
