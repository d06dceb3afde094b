"""A real `airflow api-server` for the UI plugin's tests: a temp AIRFLOW_HOME on SQLite whose DAG runs
(through `airflow dags test`) stored their XComs in a suite-started redis-server, and users of the
test auth manager (which denies tests.ui.auth_manager.DENIED_DAG to everyone) logged in with tokens.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.deployment.airflow_deployment import AirflowDeployment, wait_until
from tests.xcom_checks import backend_settings

REPO = Path(__file__).resolve().parents[2]
DAGS = Path(__file__).parent / "dags"


@dataclass
class ApiServer:
    url: str
    deployment: AirflowDeployment
    tokens: dict[str, str]  # user -> access token
    run_ids: dict[str, str]  # dag_id -> the run `dags test` made
    pid: int = 0  # the `airflow api-server` process (its own session: its children are the server's)

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def get(self, path: str, user: str, **params: Any) -> requests.Response:
        return requests.get(self.url + path, params=params, headers=self.headers(user), timeout=30)

    def post(self, path: str, user: str, body: Any) -> requests.Response:
        return requests.post(self.url + path, json=body, headers=self.headers(user), timeout=30)


@contextmanager
def api_server(
    home: Path,
    redis_url: str,
    key_prefix: str,
    ttl: int,
    dag_files: Sequence[str],
    users: Mapping[str, str],
    dags: Path = DAGS,
    extra_settings: Mapping[str, str] | None = None,
) -> Iterator[ApiServer]:
    """Run each DAG file's DAG (file name = dag id, in the folder dags) once, then serve the api-server;
    users: name -> role; extra_settings: more AIRFLOW__* variables for every command."""
    passwords = {user: secrets.token_urlsafe(12) for user in users}
    settings = {
        **backend_settings(redis_url, key_prefix, ttl),
        **(extra_settings or {}),
        "AIRFLOW__CORE__AUTH_MANAGER": "tests.ui.auth_manager.DenyOneDagAuthManager",
        # Users who log in: with all_admins, Airflow would hand anyone an admin token.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{role}" for u, role in users.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    (home / "passwords.json").write_text(json.dumps(passwords))
    deployment = AirflowDeployment("LocalExecutor", home, f"sqlite:///{home}/airflow.db", settings)
    dag_ids = [Path(name).stem for name in dag_files]
    with deployment:
        deployment.add_dags([dags / name for name in dag_files])
        deployment.run("db-migrate", ["db", "migrate"], timeout=600)
        # The DAGs in the DB first: 3.0's `dags test` does not write them, and the REST API needs them.
        deployment.run("reserialize", ["dags", "reserialize"], timeout=600)
        # Every DAG's `dags test` in one interpreter: Airflow's import is most of a short run.
        deployment.run("dags-test-many", dag_ids, timeout=900, module="tests.dags_test_many")
        api = deployment.start(
            "api-server",
            ["api-server", "--host", "127.0.0.1", "--port", str(deployment.api_port), "--workers", "1"],
        )

        def healthy() -> bool:
            deployment.assert_running()
            try:
                return requests.get(f"{deployment.api_url}/api/v2/monitor/health", timeout=5).ok
            except requests.RequestException:
                return False

        wait_until(healthy, 180, 1, lambda: f"api-server not healthy:{api.tail()}")
        tokens = {user: _login(deployment.api_url, user, password) for user, password in passwords.items()}
        run_ids = {d: _the_run(home, d) for d in dag_ids}
        yield ApiServer(deployment.api_url, deployment, tokens, run_ids, api.proc.pid)


def _login(api_url: str, user: str, password: str) -> str:
    login = requests.post(f"{api_url}/auth/token", json={"username": user, "password": password}, timeout=30)
    assert login.status_code == 201, login.text
    return str(login.json()["access_token"])


def _the_run(home: Path, dag_id: str) -> str:
    """The one run `dags test` made of dag_id, read from the DB (nobody may list the denied DAG's runs)."""
    with contextlib.closing(sqlite3.connect(home / "airflow.db")) as db:
        runs = db.execute("SELECT run_id, state FROM dag_run WHERE dag_id = ?", (dag_id,)).fetchall()
    assert [state for _, state in runs] == ["success"], (dag_id, runs)
    return str(runs[0][0])
