"""A real deployment with the CeleryExecutor: api-server, scheduler, dag-processor and an
`airflow celery worker` (tasks forked by its pool processes), PostgreSQL metadata DB, and a Redis
broker that is not the Redis holding the XComs."""

from __future__ import annotations

import pytest

from tests.deployment.checks import DeploymentChecks

EXECUTOR = "CeleryExecutor"
# The first test also waits for the module's deployment: its phases are bounded by 600 s in all.
pytestmark = [pytest.mark.deployment, pytest.mark.timeout(900)]


class TestCeleryExecutor(DeploymentChecks):
    pass
