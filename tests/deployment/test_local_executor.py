"""A real deployment with the LocalExecutor: api-server, scheduler (its executor forks each task's
supervisor and task process), dag-processor, PostgreSQL metadata DB."""

from __future__ import annotations

import pytest

from tests.deployment.checks import FANOUT, DeploymentChecks, values_of
from tests.deployment.scenario import Outcome

EXECUTOR = "LocalExecutor"
# The first test also waits for the module's deployment: its phases are bounded by 600 s in all.
pytestmark = [pytest.mark.deployment, pytest.mark.timeout(900)]


class TestLocalExecutor(DeploymentChecks):
    def test_task_processes_inherit_redis_py_from_the_scheduler(self, outcome: Outcome) -> None:
        """The plugin preloads redis-py in the scheduler, before its executor forks the workers: no
        task process pays its import (about 0.5 s of CPU) again."""
        seen = values_of(outcome, "deployment_fanout", "emit", "preloaded")
        assert sorted(seen) == list(range(FANOUT))
        for map_index, where in seen.items():
            assert where["by"] is not None and where["by"] != where["pid"], (map_index, where)
