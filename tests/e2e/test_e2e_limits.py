"""Airflow limits of older minors met through `airflow dags test`, recorded where the limit exists."""

from __future__ import annotations

import pytest

from tests.airflow_limits import SLASH_KEY_REASON, execution_api_takes_slash_keys, plain_text
from tests.e2e.conftest import E2E, describe

pytestmark = pytest.mark.e2e


def test_a_key_holding_a_slash_fails_its_push_and_the_value_is_left_to_the_ttl(e2e: E2E) -> None:
    if execution_api_takes_slash_keys():
        pytest.skip("this Airflow routes keys holding '/': test_e2e_xcom.py round-trips them")
    dag_id = "e2e_slash_key"
    result = e2e.home.dags_test(dag_id, timeout=300)
    run_id = e2e.home.latest_run(dag_id).run_id
    assert e2e.home.task_states(dag_id, run_id) == {"push_slash_key": "failed"}, describe(result)
    text = plain_text(result.output)
    assert "/push_slash_key/sl/ash" in text and "404 Not Found" in text, SLASH_KEY_REASON
    assert "ServerResponseError: Not Found" in text, describe(result)
    # serialize_value wrote the value before Airflow's POST failed: no row refers to it, and only
    # its TTL reclaims it (nothing of ours runs after the failed push).
    assert e2e.home.xcoms(dag_id, run_id) == []
    stray = sorted(e2e.run_keys(dag_id, run_id))
    assert [k.rsplit(":", 1)[-1] for k in stray] == ["sl%2Fash"]
    assert 0 < e2e.client.ttl(stray[0]) <= e2e.ttl
