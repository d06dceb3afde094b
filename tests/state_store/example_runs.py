"""Airflow's own state store example DAGs, run through `airflow dags test` under each state store mode,
and what each run left: task states, the state tables' rows and the state as a task would read it back.

One migrated AIRFLOW_HOME per test module; every mode runs in a copy of it (its own SQLite file and its
own Redis key prefix, so asset state, which outlives runs, never leaks from one mode to another), and
the modes run side by side: most of a run's wall time is the examples' own sleeps and retry delays.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import airflow
import pytest
from packaging.version import Version

from redis_xcom.ops.airflow_run import AirflowHome

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = Path(airflow.__file__).parent / "example_dags"
EXAMPLE_FILES = (
    "example_task_state_store.py",
    "example_task_state_store_mapped.py",
    "example_task_state_store_async.py",
    "example_asset_state_store.py",
)
BACKEND = "redis_xcom.RedisStateStoreBackend"
METASTORE = "airflow.state.metastore.MetastoreBackend"
REF_KEY = "__airflow_state_ref__"  # airflow.sdk.execution_time.context._EXTERNAL_STATE_REF_KEY

AIRFLOW_VERSION = Version(Version(airflow.__version__).base_version)
BEFORE_3_3_REASON = (
    f"Airflow {airflow.__version__} has no task/asset state store: AIP-103 (BaseStoreBackend, "
    "[state_store] backend, [workers] state_store_backend) arrived in Airflow 3.3"
)
NO_AGET_REASON = (
    f"Airflow {airflow.__version__}: the task SDK's TaskStateStoreAccessor has no aget/aset (they arrived "
    "in 3.4), so Airflow's example_task_state_store_async fails with AttributeError under every backend, "
    "the default MetastoreBackend included"
)
NO_ASEND_REASON = (
    f"Airflow {airflow.__version__}: `airflow dags test` runs tasks with InProcessSupervisorComms, which "
    "has no asend, so task_state_store.aget in Airflow's example_task_state_store_async fails with "
    "AttributeError under `dags test` with every backend, the default MetastoreBackend included (a real "
    "worker's supervisor has asend)"
)


def has_state_store() -> bool:
    return Version("3.3") <= AIRFLOW_VERSION


def async_example_reason() -> str | None:
    """Why example_task_state_store_async cannot run under `airflow dags test` here, or None."""
    if not accessor_has_aget():
        return NO_AGET_REASON
    from airflow.sdk.execution_time.supervisor import InProcessSupervisorComms

    if not hasattr(InProcessSupervisorComms, "asend"):
        return NO_ASEND_REASON
    return None


def accessor_has_aget() -> bool:
    """Whether async tasks can call task_state_store.aget (3.4+): example_task_state_store_async needs it."""
    from airflow.sdk.execution_time.context import TaskStateStoreAccessor

    return hasattr(TaskStateStoreAccessor, "aget")


def mode_settings(mode: str, redis_url: str, key_prefix: str) -> dict[str, str]:
    """The AIRFLOW__* variables of a mode: 'metastore' (Airflow's default), 'server' ([state_store]
    backend), 'worker' ([workers] state_store_backend) or 'both'."""
    settings = {
        "AIRFLOW__REDIS_XCOM__URL": redis_url,
        "AIRFLOW__REDIS_XCOM__KEY_PREFIX": key_prefix,
        "AIRFLOW__STATE_STORE__BACKEND": BACKEND if mode in ("server", "both") else METASTORE,
        "AIRFLOW__WORKERS__STATE_STORE_BACKEND": BACKEND if mode in ("worker", "both") else "",
    }
    return settings


@contextmanager
def redis_xcom_settings(redis_url: str, key_prefix: str) -> Iterator[None]:
    """This process's [redis_xcom] url and key_prefix for the duration (to read a mode's state back)."""
    from redis_xcom.runtime import reset_runtime

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__REDIS_XCOM__URL", redis_url)
        patch.setenv("AIRFLOW__REDIS_XCOM__KEY_PREFIX", key_prefix)
        reset_runtime()
        try:
            yield
        finally:
            reset_runtime()
    reset_runtime()


@dataclass
class ModeRun:
    """One mode's home after its DAGs ran: exit codes per DAG (in run order) and the process's log."""

    mode: str
    home: AirflowHome
    key_prefix: str
    dag_ids: Sequence[str]
    results: list[tuple[str, int]] = field(default_factory=list)
    returncode: int | None = None
    seconds: float = 0.0
    log_path: Path | None = None

    def describe(self) -> str:
        tail = ""
        if self.log_path is not None and self.log_path.exists():
            lines = self.log_path.read_text(errors="replace").splitlines()[-40:]
            tail = "".join("\n    " + line[:300] for line in lines)
        return (
            f"mode {self.mode}: `dags test` of {list(self.dag_ids)} exited {self.returncode} in "
            f"{self.seconds:.1f}s with {self.results}; log {self.log_path}{tail}"
        )

    # --- what the run left in the metadata DB -----------------------------------------------

    def run_ids(self, dag_id: str) -> list[str]:
        return [run.run_id for run in self.home.dag_runs(dag_id)]

    def run_states(self, dag_id: str) -> list[str | None]:
        return [run.state for run in self.home.dag_runs(dag_id)]

    def task_outcomes(self, dag_id: str) -> list[dict[str, tuple[str | None, int]]]:
        """Per run, oldest first: task (task[i] when mapped) -> (final state, try number)."""
        outcomes = []
        for run_id in self.run_ids(dag_id):
            outcomes.append(
                {
                    ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]": (
                        ti.state,
                        ti.try_number,
                    )
                    for ti in self.home.task_instances(dag_id, run_id)
                }
            )
        return outcomes

    def task_rows(self, dag_id: str | None = None) -> list[dict[str, Any]]:
        """The task_state_store rows; ``map_index`` is 3.4's ``region_index`` there (no region here)."""
        where, params = (" WHERE dag_id = ?", [dag_id]) if dag_id else ("", [])
        rows = [dict(r) for r in self.home.query(f"SELECT * FROM task_state_store{where}", params)]
        for row in rows:
            row.setdefault("map_index", row.get("region_index"))
        return rows

    def asset_rows(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.home.query("SELECT * FROM asset_state_store")]

    def asset_id(self, name: str) -> int:
        rows = self.home.query("SELECT id FROM asset WHERE name = ?", [name])
        assert rows, f"mode {self.mode}: no asset named {name!r} in {self.home.db_path}"
        return int(rows[0]["id"])


def start_modes(
    base: AirflowHome, modes: Mapping[str, Sequence[str]], redis_url: str, prefix: str
) -> list[tuple[ModeRun, subprocess.Popen[bytes]]]:
    """Start each mode's DAGs (mode -> dag ids, run in that order) in its own copy of base, all at once."""
    started = []
    for mode, dag_ids in modes.items():
        key_prefix = f"{prefix}-{mode}"
        home = base.clone(env=mode_settings(mode, redis_url, key_prefix), prefix=f"redis-xcom-ss-{mode}-")
        run = ModeRun(mode, home, key_prefix, list(dag_ids))
        run.log_path = home.command_logs / "dags-test-many.log"
        env = home.environ({"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])})
        with open(run.log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.dags_test_many", *dag_ids],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=REPO,
            )
        run.seconds = time.perf_counter()
        started.append((run, proc))
    return started


def finish_modes(started: list[tuple[ModeRun, subprocess.Popen[bytes]]], timeout: float) -> list[ModeRun]:
    deadline = time.perf_counter() + timeout
    finished = []
    for run, proc in started:
        try:
            run.returncode = proc.wait(timeout=max(1.0, deadline - time.perf_counter()))
        except subprocess.TimeoutExpired:
            proc.kill()
            run.returncode = proc.wait()
        run.seconds = time.perf_counter() - run.seconds
        assert run.log_path is not None
        for line in run.log_path.read_text(errors="replace").splitlines():
            if line.startswith("RESULT "):
                _, dag_id, code = line.split()
                run.results.append((dag_id, int(code)))
        finished.append(run)
    return finished


def decoded(stored: str) -> Any:
    """A state value's JSON text, decoded; a worker-side reference stays {REF_KEY: ref}."""
    return json.loads(stored)


def is_reference(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {REF_KEY} and isinstance(value[REF_KEY], str)
