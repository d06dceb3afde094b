"""The end-to-end DAG through `airflow dags test` with the backend on a Redis Cluster (redis+cluster://)."""

from __future__ import annotations

import uuid

import pytest

from tests.cluster_process import RedisClusterProcesses
from tests.e2e.conftest import E2E, TTL, describe
from tests.e2e.test_e2e_xcom import DAG_ID, MAPPED_INPUT, ODD_KEYS, carried
from tests.xcom_checks import assert_rows_agree_with_redis, backend_settings, stored_value

pytestmark = [pytest.mark.e2e, pytest.mark.topology]


def test_e2e_dag_on_a_redis_cluster(e2e: E2E, redis_cluster: RedisClusterProcesses) -> None:
    prefix = f"e2e-cluster-{uuid.uuid4().hex[:8]}"
    env = backend_settings(redis_cluster.url, prefix, TTL)
    env["AIRFLOW__REDIS_XCOM__WAIT_REPLICAS"] = "1"  # every push confirmed by its master's replica
    env["AIRFLOW__REDIS_XCOM__WAIT_TIMEOUT_MS"] = "3000"  # room for a loaded CI machine
    home = e2e.home.clone(env=env, prefix="redis-xcom-e2e-cluster-")
    try:
        conf = {"odd_keys": [key for key in ODD_KEYS if carried(key)]}
        result = home.dags_test(DAG_ID, conf=conf, timeout=300)
        assert result.ok, describe(result)
        run_id = home.latest_run(DAG_ID).run_id
        client = redis_cluster.client()
        rows = home.xcoms(DAG_ID, run_id)
        assert_rows_agree_with_redis(rows, client, prefix, TTL, DAG_ID, run_id)
        collect = next(row for row in rows if row.task_id == "collect" and row.key == "return_value")
        assert stored_value(client, collect) == sum(x * x for x in MAPPED_INPUT)
    finally:
        home.cleanup()
