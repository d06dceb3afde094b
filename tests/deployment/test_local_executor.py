"""A real deployment with the LocalExecutor: api-server, scheduler (its executor forks each task's
supervisor and task process), dag-processor, PostgreSQL metadata DB."""

from __future__ import annotations

import pytest

from tests.deployment.checks import DeploymentChecks

EXECUTOR = "LocalExecutor"
pytestmark = pytest.mark.deployment


class TestLocalExecutor(DeploymentChecks):
    pass
