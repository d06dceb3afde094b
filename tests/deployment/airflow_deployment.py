"""A real Airflow deployment in a temp AIRFLOW_HOME: api-server, scheduler, dag-processor and, for
Celery, a worker, each a process of its own (its own session, killed by pid) with a log file.

Test infrastructure only. Nothing of the caller's Airflow settings leaks in (no AIRFLOW_HOME,
AIRFLOW_CONFIG or AIRFLOW__*), so a user's own deployment can never be reached by accident.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.process_group import stop_group, stop_groups
from tests.redis_process import free_port

# Variables of the caller's environment that never reach an Airflow process.
_DROPPED_VARIABLES = ("AIRFLOW_HOME", "AIRFLOW_CONFIG")
_DROPPED_PREFIX = "AIRFLOW__"
CONCURRENCY = 4  # task processes at once: executor parallelism and Celery worker concurrency


class DeploymentError(RuntimeError):
    """A component died or a command failed; the message carries the tail of the logs."""


@dataclass
class Component:
    """One long-running Airflow process of the deployment."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def tail(self, lines: int = 40) -> str:
        return tail_of(self.log_path, lines)


def tail_of(path: Path, lines: int = 40) -> str:
    """The last lines of a log file, indented, for failure messages (without the api-server's
    access log of our own polling, which would fill them)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").rstrip().splitlines()
    except OSError as exc:
        return f"\n    (no log: {exc})"
    kept = [line for line in text if not _is_access_log(line)][-lines:]
    return "".join("\n    " + line[:400] for line in kept)


def _is_access_log(line: str) -> bool:
    # 3.1+ log requests as structured http.access records; 3.0 through uvicorn's access logger.
    return "[http.access]" in line or ('- "GET /' in line and "HTTP/1.1" in line)


class AirflowDeployment:
    """Airflow as production runs it, in one temporary AIRFLOW_HOME; a context manager."""

    def __init__(self, executor: str, home: Path, sql_alchemy_conn: str, settings: Mapping[str, str]) -> None:
        self.executor = executor
        self.home = home  # kept after the tests (pytest's tmp_path retention): its logs explain failures
        self.api_port = free_port()
        self.dags_folder.mkdir()
        self.process_logs.mkdir()
        self.settings = {**self._base_settings(sql_alchemy_conn), **settings}
        self.components: list[Component] = []

    @property
    def dags_folder(self) -> Path:
        return self.home / "dags"

    @property
    def process_logs(self) -> Path:
        """Where each component's and command's output goes."""
        return self.home / "process-logs"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def _base_settings(self, sql_alchemy_conn: str) -> dict[str, str]:
        return {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_alchemy_conn,
            "AIRFLOW__CORE__EXECUTOR": self.executor,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__PARALLELISM": str(CONCURRENCY),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__API__BASE_URL": self.api_url,
            # Every process signs and checks task and user tokens with the same secret.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(
                64
            ),  # >= 64 bytes, as PyJWT wants for HS512
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "2",
            # The files never change during a test: parse each once, not every 30 s.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            # Ports of our own: never 8793/8794, which another Airflow on the machine may hold.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "PYTHONUNBUFFERED": "1",
        }

    # --- lifetime -------------------------------------------------------------------------------

    def __enter__(self) -> AirflowDeployment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def environ(self) -> dict[str, str]:
        """The caller's environment minus anything Airflow, plus this deployment's settings."""
        base = {
            name: value
            for name, value in os.environ.items()
            if name not in _DROPPED_VARIABLES and not name.startswith(_DROPPED_PREFIX)
        }
        return {**base, **self.settings}

    def add_dags(self, files: Iterable[Path]) -> None:
        for source in files:
            shutil.copy2(source, self.dags_folder / source.name)

    def run(self, name: str, args: list[str], timeout: float, module: str = "airflow") -> None:
        """A one-off `airflow <args>` (or `python -m module <args>`) that must succeed within
        timeout (e.g. `db migrate`)."""
        log_path = self.process_logs / f"{name}.log"
        with open(log_path, "wb") as log:
            proc = self._popen(args, log, module)
            try:
                returncode: int | str = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                stop_group(proc)
                returncode = f"nothing: timed out after {timeout}s"
        if returncode != 0:
            raise DeploymentError(
                f"`airflow {' '.join(args)}` exited {returncode}; {log_path}:{tail_of(log_path)}"
            )

    def start(self, name: str, args: list[str]) -> Component:
        """A long-running component, in a session of its own so that stop() reaches its children."""
        log_path = self.process_logs / f"{name}.log"
        with open(log_path, "wb") as log:
            component = Component(name, self._popen(args, log), log_path)
        self.components.append(component)
        return component

    def _popen(self, args: list[str], log: object, module: str = "airflow") -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdout=log,  # type: ignore[arg-type]
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.environ(),
            cwd=self.home,
            start_new_session=True,
        )

    def start_all(self) -> None:
        """The components a deployment with this executor runs."""
        port = str(self.api_port)
        self.start("api-server", ["api-server", "--host", "127.0.0.1", "--port", port, "--workers", "1"])
        self.start("scheduler", ["scheduler"])
        self.start("dag-processor", ["dag-processor"])
        if self.executor == "CeleryExecutor":
            self.start("celery-worker", ["celery", "worker", "--concurrency", str(CONCURRENCY)])

    def assert_running(self) -> None:
        """Raise, with its log, if a component has exited."""
        for component in self.components:
            code = component.proc.poll()
            if code is not None:
                raise DeploymentError(
                    f"{component.name} exited with {code}:{component.tail()}\n{self.tails()}"
                )

    def tails(self, lines: int = 40) -> str:
        """The tail of every component's log, for a failure message."""
        return (
            "\n".join(f"--- {c.name} ({c.log_path}){c.tail(lines)}" for c in self.components)
            + f"\n--- task logs under {self.home / 'logs'}"
        )

    def stop(self) -> None:
        """SIGTERM every component's process group, then SIGKILL what remains; never by name."""
        started = time.monotonic()
        stop_groups([c.proc for c in self.components], grace=15)
        # How each one ended (-9: it ignored SIGTERM for the whole grace period), for whoever reads the home.
        lines = [f"{c.name}: exit {c.proc.returncode}" for c in self.components]
        lines.append(f"stopped in {time.monotonic() - started:.1f}s")
        (self.process_logs / "stop.log").write_text("\n".join(lines) + "\n")
        self.components.clear()


def wait_until(
    predicate: Callable[[], bool], timeout: float, interval: float, describe: Callable[[], str]
) -> None:
    """Poll predicate() until it is true; on timeout raise DeploymentError(describe())."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise DeploymentError(describe())
