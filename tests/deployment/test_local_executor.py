"""A real deployment with the LocalExecutor: api-server, scheduler (its executor forks each task's
supervisor and task process), dag-processor, PostgreSQL metadata DB."""

from __future__ import annotations

import pytest

from tests.deployment.checks import DeploymentChecks

EXECUTOR = "LocalExecutor"
# The first test also waits for the module's deployment: its phases are bounded by 600 s in all.
pytestmark = [pytest.mark.deployment, pytest.mark.timeout(900)]


class TestLocalExecutor(DeploymentChecks):
    pass
