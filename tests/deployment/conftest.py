"""Fixtures of the deployment tests: a PostgreSQL server per session, a deployment per module.

Each test module names its executor (`EXECUTOR = "LocalExecutor"`); its `outcome` fixture starts
that deployment once, runs every DAG, and stops every process it started (by pid) afterwards,
whatever happened.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.deployment.airflow_deployment import CONCURRENCY, AirflowDeployment
from tests.deployment.connections import own_client
from tests.deployment.metadata import MetadataDB
from tests.deployment.rest_api import AirflowApi
from tests.deployment.scenario import (
    MIGRATE_TIMEOUT,
    TTL,
    Outcome,
    XComStore,
    dag_files,
    run_scenario,
    state_store_settings,
)
from tests.postgres_process import PostgresServer
from tests.redis_process import MISSING_REASON, REDIS_SERVER, RedisServer
from tests.xcom_checks import backend_settings


@pytest.fixture(scope="module")
def outcome(
    request: pytest.FixtureRequest, postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Outcome]:
    if REDIS_SERVER is None:
        pytest.skip(MISSING_REASON)
    executor: str = request.module.EXECUTOR
    with ExitStack() as stack:
        # The XComs' Redis is the deployment's own, so its client count is the deployment's alone.
        xcom_redis = stack.enter_context(RedisServer())
        database = postgres.create_database(f"airflow_{executor.lower()}_{uuid.uuid4().hex[:6]}")
        prefix = f"deploy-{uuid.uuid4().hex[:6]}"
        settings = {**backend_settings(xcom_redis.url, prefix, TTL), **state_store_settings()}
        if executor == "CeleryExecutor":
            # The broker is a Redis of its own: Celery's connections never mix with the XComs'.
            broker = stack.enter_context(RedisServer())
            settings.update(celery_settings(broker.url, postgres.sqlalchemy_url(database)))
        home = tmp_path_factory.mktemp(executor.lower())
        deployment = stack.enter_context(
            AirflowDeployment(executor, home, postgres.sqlalchemy_url(database), settings)
        )
        deployment.add_dags(dag_files())
        deployment.run("db-migrate", ["db", "migrate"], timeout=MIGRATE_TIMEOUT)
        api = AirflowApi(deployment.api_url)
        stack.callback(api.close)
        db = MetadataDB(lambda: postgres.connect(database))
        xcom = XComStore(xcom_redis.url, own_client(xcom_redis.url), prefix, TTL)
        yield run_scenario(Outcome(executor, deployment, api, db, xcom))


def celery_settings(broker_url: str, sqlalchemy_url: str) -> dict[str, str]:
    return {
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + sqlalchemy_url,  # keeps +psycopg2: the one installed
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(CONCURRENCY),
        "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
    }
