"""One pass of the deployment tests: deploy Airflow, run every DAG at once through the REST API,
clear and re-run a task, and record what a user would look at afterwards.
"""

from __future__ import annotations

import importlib.util
import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import redis

from redis_xcom.rows import XComRow
from tests.deployment.airflow_deployment import AirflowDeployment, DeploymentError, wait_until
from tests.deployment.connections import ClientSampler, clients_of_processes, process_tree
from tests.deployment.metadata import MetadataDB
from tests.deployment.rest_api import TERMINAL_RUN_STATES, AirflowApi
from tests.e2e.test_e2e_xcom import ODD_KEYS, carried
from tests.state_store.example_runs import accessor_has_aget, has_state_store
from tests.xcom_checks import stored_value

HERE = Path(__file__).parent
OWN_DAGS = HERE / "dags" / "deployment_xcom.py"
# The state store's DAG (Airflow 3.3+): task and asset state with RedisStateStoreBackend in both settings.
STATE_DAGS = HERE / "dags" / "deployment_state.py"
STATE_DAG = "deployment_state"
ASYNC_EXAMPLE = "airflow.example_dags.example_task_state_store_async"
E2E_DAG = HERE.parent / "e2e" / "dags" / "e2e_xcom.py"
# Airflow's own XCom examples, found through the installed package (whichever of them it ships).
EXAMPLE_MODULES = (
    "airflow.example_dags.example_xcom",
    "airflow.example_dags.example_xcomargs",
    "airflow.example_dags.example_dynamic_task_mapping",
    "airflow.example_dags.example_dynamic_task_mapping_with_no_taskflow_operators",
    "airflow.providers.standard.example_dags.example_short_circuit_decorator",
)
RERUN_DAG = "deployment_rerun"
RERUN_TASKS = ["per_try", "per_try_mapped"]
TTL = 3600  # not the default, so the checks also see [redis_xcom] ttl reach the task processes

# Bounds of each phase (seconds); a phase that overruns fails with the tail of every log.
MIGRATE_TIMEOUT = 120
STARTUP_TIMEOUT = 90  # the api-server answering; then again for every DAG file parsed
RUNS_TIMEOUT = 300  # from the triggers until every run has finished, the re-run included


@dataclass(frozen=True)
class XComStore:
    """The Redis that holds the XComs, and the backend's settings the deployment runs with."""

    url: str
    client: redis.Redis  # the test's own (named: never counted as the deployment's)
    prefix: str
    ttl: int


@dataclass
class Connections:
    """The deployment's connections to the XCom Redis: before the runs, the most at once, after."""

    baseline: int = 0
    baseline_clients: list[str] = field(default_factory=list)
    peak: int = 0
    after: int = 0
    samples: int = 0
    opened: int = 0  # connections the XCom Redis accepted during the runs
    # Held by the api-server after the runs: with the state store on Redis (Airflow 3.3+), its
    # execution API keeps the backend's pooled connection for the process's lifetime.
    api_server: int = 0


@dataclass
class Outcome:
    """What the deployment left behind, for the tests to check."""

    executor: str
    deployment: AirflowDeployment
    api: AirflowApi
    db: MetadataDB
    xcom: XComStore
    dag_files: dict[str, str] = field(default_factory=dict)
    runs: dict[tuple[str, str], str] = field(default_factory=dict)  # (dag_id, run_id) -> state
    triggered: dict[str, str] = field(default_factory=dict)  # dag_id -> the run the test triggered
    before_clear: dict[tuple[str, int, str], Any] = field(default_factory=dict)
    connections: Connections = field(default_factory=Connections)
    task_processes: int = 0
    seconds: float = 0.0

    @property
    def rerun_id(self) -> str:
        return self.triggered[RERUN_DAG]

    def rows(self, dag_id: str, run_id: str) -> list[XComRow]:
        """Every xcom row of a run: on Airflow 3.4 the archived attempts' too."""
        return self.db.xcoms(dag_id, run_id)

    def live_rows(self, dag_id: str, run_id: str) -> list[XComRow]:
        """The xcom rows of the live attempts of a run (every row before 3.4): what tasks pull."""
        return self.db.xcoms(dag_id, run_id, live=True)

    def values(self, dag_id: str, run_id: str, task_ids: Iterable[str]) -> dict[tuple[str, int, str], Any]:
        """(task_id, map_index, key) -> the value Redis holds for the live attempt's row, for some
        tasks of a run."""
        wanted = set(task_ids)
        return {
            (row.task_id, row.map_index, row.key): stored_value(self.xcom.client, row)
            for row in self.live_rows(dag_id, run_id)
            if row.task_id in wanted
        }

    def describe(self) -> str:
        states = "".join(f"\n    {dag}/{run}: {state}" for (dag, run), state in sorted(self.runs.items()))
        return f"{self.executor} runs:{states}\n{self.deployment.tails()}"


def dag_files() -> list[Path]:
    """The DAG files the deployment runs: ours, the e2e DAG, and Airflow's examples it has."""
    examples = [Path(spec.origin) for m in EXAMPLE_MODULES if (spec := _find(m)) and spec.origin]
    if not examples:
        raise DeploymentError(f"none of Airflow's example DAGs {EXAMPLE_MODULES} is installed")
    state = [STATE_DAGS] if has_state_store() else []
    # Airflow's async state store example needs aget (3.4+); `dags test` cannot run it, a worker can.
    if has_state_store() and accessor_has_aget():
        state.append(Path(str(_find(ASYNC_EXAMPLE).origin)))  # type: ignore[union-attr]
    return [OWN_DAGS, E2E_DAG, *state, *examples]


def state_store_settings() -> dict[str, str]:
    """RedisStateStoreBackend as both the api-server's and the workers' state store (Airflow 3.3+),
    on the XComs' Redis and key_prefix."""
    if not has_state_store():
        return {}
    backend = "redis_xcom.RedisStateStoreBackend"
    return {"AIRFLOW__STATE_STORE__BACKEND": backend, "AIRFLOW__WORKERS__STATE_STORE_BACKEND": backend}


def _find(module: str) -> importlib.machinery.ModuleSpec | None:
    """The module's spec without importing it (a missing parent package counts as missing)."""
    try:
        return importlib.util.find_spec(module)
    except ModuleNotFoundError:
        return None


def run_scenario(outcome: Outcome) -> Outcome:
    """Start the deployment and drive it; fills `outcome` in (also what it saw before a failure)."""
    started = time.monotonic()
    outcome.deployment.start_all()
    _wait_for_api(outcome)
    outcome.dag_files = _wait_for_dags(outcome)
    outcome.xcom.client.ping()  # the test's own connection opens now, not among the runs' ones
    with ClientSampler(outcome.xcom.url) as sampler:
        outcome.connections.baseline = sampler.baseline
        outcome.connections.baseline_clients = sampler.baseline_clients
        _trigger_all(outcome)
        deadline = time.monotonic() + RUNS_TIMEOUT
        # The clear and re-run go on while the other DAGs still run.
        _wait_for_runs(outcome, deadline, only=(RERUN_DAG, outcome.rerun_id))
        outcome.before_clear = outcome.values(RERUN_DAG, outcome.rerun_id, RERUN_TASKS)
        outcome.api.clear(RERUN_DAG, outcome.rerun_id, RERUN_TASKS)
        _wait_for_rerun(outcome, deadline)
        _wait_for_runs(outcome, deadline)
    outcome.connections.peak, outcome.connections.samples = sampler.peak, sampler.samples
    outcome.connections.opened = sampler.opened
    api_server = next(c for c in outcome.deployment.components if c.name == "api-server")
    outcome.connections.api_server = clients_of_processes(
        outcome.xcom.client, process_tree(api_server.proc.pid)
    )
    outcome.connections.after = sampler.settle(kept=outcome.connections.api_server)
    outcome.task_processes = outcome.db.tries_run()
    outcome.seconds = time.monotonic() - started
    _write_summary(outcome)
    return outcome


def _write_summary(outcome: Outcome) -> None:
    """The figures of this pass, next to the logs (for people reading a run's home afterwards)."""
    summary = {
        "airflow": version("apache-airflow"),
        "executor": outcome.executor,
        "seconds": round(outcome.seconds, 1),
        "dags": len(outcome.dag_files),
        "runs": {f"{dag}/{run}": state for (dag, run), state in sorted(outcome.runs.items())},
        "task_processes": outcome.task_processes,
        "connections": vars(outcome.connections),
    }
    (outcome.deployment.home / "summary.json").write_text(json.dumps(summary, indent=2))


def _wait_for_api(outcome: Outcome) -> None:
    def up() -> bool:
        outcome.deployment.assert_running()
        return outcome.api.healthy()

    wait_until(up, STARTUP_TIMEOUT, 0.5, lambda: f"the api-server never answered\n{outcome.describe()}")
    outcome.api.login()


def _wait_for_dags(outcome: Outcome) -> dict[str, str]:
    """dag_id -> file, once every file in the dags folder has its DAGs in the DB (no import error)."""
    wanted = {p.name for p in outcome.deployment.dags_folder.glob("*.py")}
    seen: dict[str, str] = {}

    def parsed() -> bool:
        outcome.deployment.assert_running()
        errors = outcome.api.import_errors()
        if errors:
            raise DeploymentError(f"DAG import errors: {errors}")
        seen.update(outcome.api.dag_files())
        return wanted <= set(seen.values())

    wait_until(parsed, STARTUP_TIMEOUT, 1, lambda: f"parsed {seen}, want every file of {wanted}")
    return seen


def _trigger_all(outcome: Outcome) -> None:
    """Unpause every DAG and trigger one run of each, all at once (the executor queues them)."""
    tag = uuid.uuid4().hex[:8]
    for dag_id in sorted(outcome.dag_files):
        outcome.api.unpause(dag_id)
        run_id = outcome.api.trigger(dag_id, f"deployment__{tag}__{dag_id}", run_conf(dag_id))
        outcome.runs[(dag_id, run_id)] = "queued"
        outcome.triggered[dag_id] = run_id


def run_conf(dag_id: str) -> dict[str, Any]:
    """The e2e DAG pushes only the odd keys this Airflow's execution API carries, as in tests/e2e."""
    if dag_id != "e2e_xcom":
        return {}
    return {"odd_keys": [key for key in ODD_KEYS if carried(key)]}


def _wait_for_runs(outcome: Outcome, deadline: float, only: tuple[str, str] | None = None) -> None:
    """Until one run, or every run (the scheduler's own `@once` runs too), has finished."""

    def finished() -> bool:
        outcome.deployment.assert_running()
        for dag_id in outcome.dag_files:
            for run_id, state in outcome.api.runs(dag_id).items():
                outcome.runs[(dag_id, run_id)] = state
        states = [outcome.runs[only]] if only else list(outcome.runs.values())
        return all(state in TERMINAL_RUN_STATES for state in states)

    wait_until(
        finished, _left(deadline), 1, lambda: f"runs still going at the deadline\n{outcome.describe()}"
    )


def _wait_for_rerun(outcome: Outcome, deadline: float) -> None:
    """Until the cleared tasks have run again, successfully (each is past its first try)."""

    def rerun() -> bool:
        outcome.deployment.assert_running()
        tries = [t for t in outcome.db.task_tries(RERUN_DAG, outcome.rerun_id) if t.task_id in RERUN_TASKS]
        if any(t.state in ("failed", "upstream_failed") for t in tries):
            raise DeploymentError(f"a cleared task failed on its re-run: {tries}\n{outcome.describe()}")
        return bool(tries) and all(t.try_number >= 2 and t.state == "success" for t in tries)

    wait_until(rerun, _left(deadline), 1, lambda: f"the cleared tasks never re-ran\n{outcome.describe()}")


def _left(deadline: float) -> float:
    return max(1.0, deadline - time.monotonic())
