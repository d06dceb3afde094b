"""Hybrid mode on a real `airflow api-server`: a DAG run's results, as the REST API's
`/dags/{dag_id}/dagRuns/{run_id}/wait` returns them (Airflow 3.3+), show the values of small XComs.

That endpoint reads the xcom rows raw, never through the backend: an inline value is shown as itself,
a value in Redis as its reference.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.airflow_limits import DAG_RESULT_REASON, dag_results
from tests.e2e.dags.e2e_hybrid import MAPPED_SIZES, SUMMARY, THRESHOLD, text_of
from tests.redis_process import RedisServer
from tests.ui.server import ApiServer, api_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

DAGS = Path(__file__).parent / "dags"
DAG_ID = "e2e_hybrid"
READER = "reader"


@pytest.fixture(scope="module")
def served(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    if not dag_results():
        pytest.skip(DAG_RESULT_REASON)
    home = tmp_path_factory.mktemp("wait-airflow-home")
    prefix = f"wait-{uuid.uuid4().hex[:8]}"
    inline = {"AIRFLOW__REDIS_XCOM__INLINE_MAX_BYTES": str(THRESHOLD)}
    with api_server(
        home, redis_server.url, prefix, 3600, [f"{DAG_ID}.py"], {READER: "viewer"}, DAGS, inline
    ) as server:
        yield server


def wait(server: ApiServer, **params: Any) -> dict[str, Any]:
    """The last state /wait streams (NDJSON) for the run `dags test` made; POST where the API has
    it, GET where it does not (Airflow 3.3 and 3.4.0b2 serve GET)."""
    path = f"{server.url}/api/v2/dags/{DAG_ID}/dagRuns/{server.run_ids[DAG_ID]}/wait"
    query = {"interval": 0.5, **params}
    response = requests.post(path, params=query, headers=server.headers(READER), timeout=60)
    if response.status_code == 405:
        response = requests.get(path, params=query, headers=server.headers(READER), timeout=60)
    assert response.status_code == 200, response.text
    lines = [line for line in response.text.splitlines() if line.strip()]
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def test_the_dag_result_shows_the_small_value_itself(served: ApiServer) -> None:
    assert wait(served) == {"state": "success", "results": {"summary": SUMMARY}}


def test_results_asked_for_show_small_values_and_references_for_large_ones(served: ApiServer) -> None:
    results = wait(served, result=["mapped", "large_result"])["results"]
    mapped = results["mapped"]
    assert len(mapped) == len(MAPPED_SIZES)
    for shown, length in zip(mapped, MAPPED_SIZES, strict=True):
        if length <= THRESHOLD:
            assert shown == text_of(length)
        else:
            assert shown.startswith("redis-xcom://")
    assert results["large_result"].startswith("redis-xcom://")
