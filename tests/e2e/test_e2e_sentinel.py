"""The end-to-end DAG through `airflow dags test`, the backend reaching Redis through Sentinel as an
Airflow connection stored in the metadata DB (redis_conn_id), so the task reads it through its
supervisor as a deployed worker does."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.e2e.conftest import E2E, TTL, describe
from tests.e2e.test_e2e_xcom import DAG_ID, MAPPED_INPUT, ODD_KEYS, carried
from tests.topologies.sentinel import MASTER_PASSWORD, SENTINEL_PASSWORD, SERVICE, SentinelDeployment
from tests.xcom_checks import assert_rows_agree_with_redis, backend_settings, stored_value

pytestmark = [pytest.mark.e2e, pytest.mark.topology]


def test_e2e_dag_through_sentinel_named_by_an_airflow_connection(e2e: E2E) -> None:
    prefix = f"e2e-sentinel-{uuid.uuid4().hex[:8]}"
    with SentinelDeployment() as deployment:
        # An empty url (over the session's) leaves redis_conn_id to name the Redis.
        env = backend_settings("", prefix, TTL)
        env["AIRFLOW__REDIS_XCOM__REDIS_CONN_ID"] = "xcom_sentinel"
        home = e2e.home.clone(env=env, prefix="redis-xcom-e2e-sentinel-")
        try:
            conn = {
                "conn_type": "redis",
                "host": ",".join(f"127.0.0.1:{s.port}" for s in deployment.sentinels),
                "password": MASTER_PASSWORD,
                "extra": {"sentinel_service": SERVICE, "sentinel_password": SENTINEL_PASSWORD},
            }
            home.run(["connections", "add", "xcom_sentinel", "--conn-json", json.dumps(conn)], check=True)
            conf = {"odd_keys": [key for key in ODD_KEYS if carried(key)]}
            result = home.dags_test(DAG_ID, conf=conf, timeout=300)
            assert result.ok, describe(result)
            run_id = home.latest_run(DAG_ID).run_id
            master = deployment.current_master().client()
            rows = home.xcoms(DAG_ID, run_id)
            assert_rows_agree_with_redis(rows, master, prefix, TTL, DAG_ID, run_id)
            collect = next(row for row in rows if row.task_id == "collect" and row.key == "return_value")
            assert stored_value(master, collect) == sum(x * x for x in MAPPED_INPUT)
        finally:
            home.cleanup()
