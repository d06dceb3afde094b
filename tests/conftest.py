from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.cluster_process import RedisClusterProcesses
from tests.postgres_process import MISSING_REASON as POSTGRES_MISSING
from tests.postgres_process import PostgresServer, missing_reason
from tests.redis_process import MISSING_REASON, REDIS_SERVER, TEST_SERVER, TEST_SERVER_ENV, RedisServer
from tests.topologies.tls import OPENSSL_MISSING

if TYPE_CHECKING:
    import fakeredis


def pytest_configure(config: pytest.Config) -> None:
    """An engine asked for by name must be there: `make test-valkey` skipping every test would pass."""
    if os.environ.get(TEST_SERVER_ENV) and REDIS_SERVER is None:
        raise pytest.UsageError(f"{TEST_SERVER_ENV}={TEST_SERVER}: {MISSING_REASON}")


# Skips that only mean "this machine lacks a server or a tool": under CI=true they fail the run, so a
# missing install step can never pass as green.
MISSING_TOOLS = (MISSING_REASON, POSTGRES_MISSING, OPENSSL_MISSING, "initdb refuses root")


def _on_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and _on_ci() and isinstance(report.longrepr, tuple)):
        return
    reason = str(report.longrepr[2])
    if any(missing in reason for missing in MISSING_TOOLS):
        report.outcome = "failed"
        report.longrepr = f"CI=true and a server or tool is missing (a skip would hide it): {reason}"


# The slow kinds of test first: xdist hands out whole files in collection order, so a long file
# started last would leave one worker busy alone at the end.
COST_RANK = {"deployment": 0, "e2e": 1, "browser": 1, "integration": 2, "topology": 2}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return min((COST_RANK.get(mark.name, 3) for mark in item.iter_markers()), default=3)

    file_rank: dict[str, int] = {}
    for item in items:
        file_rank[item.nodeid.split("::")[0]] = min(file_rank.get(item.nodeid.split("::")[0], 3), rank(item))
    order = {id(item): i for i, item in enumerate(items)}
    items.sort(key=lambda item: (file_rank[item.nodeid.split("::")[0]], order[id(item)]))


def pytest_report_header(config: pytest.Config) -> str:
    return f"server engine: {TEST_SERVER} ({REDIS_SERVER or 'not found'}; set {TEST_SERVER_ENV} to change)"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server started by the suite for the whole session; tests must use their own keys."""
    if REDIS_SERVER is None:
        pytest.skip(MISSING_REASON)
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the suite's own; each test that needs one gets a database in it."""
    reason = missing_reason()
    if reason is not None:
        pytest.skip(reason)
    with PostgresServer() as server:
        yield server


@pytest.fixture
def fresh_redis_server() -> Iterator[RedisServer]:
    """A real redis-server of the test's own, free to kill, restart or reconfigure."""
    if REDIS_SERVER is None:
        pytest.skip(MISSING_REASON)
    with RedisServer() as server:
        yield server


@pytest.fixture
def xcom_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Set [redis_xcom] options through AIRFLOW__REDIS_XCOM__*; the backend re-reads them."""
    from redis_xcom.runtime import reset_runtime

    reset_runtime()
    yield monkeypatch
    monkeypatch.undo()
    reset_runtime()


@pytest.fixture
def fake_redis(xcom_settings: pytest.MonkeyPatch) -> Iterator[fakeredis.FakeRedis]:
    """The backend talking to an in-memory fakeredis server (unit tests that need no real server)."""
    import fakeredis

    from redis_xcom.storage import client, topology

    server = fakeredis.FakeServer()
    fake = lambda settings: topology.connection_of(fakeredis.FakeRedis(server=server))  # noqa: E731
    xcom_settings.setattr(client, "build_connection", fake)
    yield fakeredis.FakeRedis(server=server)


@pytest.fixture
def real_backend(
    redis_server: RedisServer, xcom_settings: pytest.MonkeyPatch, request: pytest.FixtureRequest
):
    """The backend talking to the suite's redis-server under a key prefix of this test's own."""
    import re

    prefix = "t-" + re.sub(r"[^A-Za-z0-9_.-]", "-", request.node.name)[:80]
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__URL", redis_server.url)
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__KEY_PREFIX", prefix)
    return prefix


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterProcesses]:
    """A Redis Cluster of 3 masters with a replica each, started by the suite for the session."""
    if REDIS_SERVER is None:
        pytest.skip(MISSING_REASON)
    with RedisClusterProcesses() as cluster:
        yield cluster


@pytest.fixture
def fresh_redis_cluster() -> Iterator[RedisClusterProcesses]:
    """A Redis Cluster of the test's own, free to reshard or to kill a master of."""
    if REDIS_SERVER is None:
        pytest.skip(MISSING_REASON)
    with RedisClusterProcesses() as cluster:
        yield cluster
