"""The bits of Airflow's public REST API (/api/v2) a user drives DAG runs with; 3.0 to 3.4.

Auth: with `[core] simple_auth_manager_all_admins = True` the SimpleAuthManager hands an admin
JWT to anyone at GET /auth/token (the same on 3.0.6, 3.3.2 and 3.4.0b2); every call then sends it as a
Bearer token, as a script of a user's would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

TERMINAL_RUN_STATES = frozenset({"success", "failed"})


class AirflowApi:
    """A logged-in client of one api-server."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=30)

    def close(self) -> None:
        self.http.close()

    def healthy(self) -> bool:
        """True once the api-server answers its health check."""
        try:
            return self.http.get("/api/v2/monitor/health").status_code == 200
        except httpx.TransportError:
            return False

    def login(self) -> None:
        response = self.http.get("/auth/token")
        response.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, "/api/v2" + path, **kwargs)
        if response.status_code >= 400:
            raise AssertionError(f"{method} {path} -> {response.status_code}: {response.text[:2000]}")
        return response.json() if response.content else None

    # --- DAGs ------------------------------------------------------------------------------------

    def dag_files(self) -> dict[str, str]:
        """dag_id -> file name, for the DAGs the dag-processor has parsed and serialized so far."""
        found = self._call("GET", "/dags", params={"limit": 100})["dags"]
        return {d["dag_id"]: Path(d["fileloc"]).name for d in found}

    def import_errors(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/importErrors", params={"limit": 100})["import_errors"])

    def unpause(self, dag_id: str) -> None:
        self._call("PATCH", f"/dags/{quote(dag_id)}", json={"is_paused": False})

    # --- runs ------------------------------------------------------------------------------------

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any]) -> str:
        """POST dagRuns (logical_date is required but nullable on 3.0); returns the run id."""
        body = {"dag_run_id": run_id, "logical_date": None, "conf": conf}
        return str(self._call("POST", f"/dags/{quote(dag_id)}/dagRuns", json=body)["dag_run_id"])

    def runs(self, dag_id: str) -> dict[str, str]:
        """run_id -> state of every run of a DAG (ours and the ones the scheduler made)."""
        found = self._call("GET", f"/dags/{quote(dag_id)}/dagRuns", params={"limit": 100})["dag_runs"]
        return {r["dag_run_id"]: r["state"] for r in found}

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self._call("GET", f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id, safe='')}")["state"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id, safe='')}/taskInstances"
        return list(self._call("GET", path, params={"limit": 500})["task_instances"])

    def clear(self, dag_id: str, run_id: str, task_ids: list[str]) -> list[dict[str, Any]]:
        """Clear tasks of a finished run and their downstream tasks, as the UI's Clear button does."""
        body = {
            "dry_run": False,
            "dag_run_id": run_id,
            "task_ids": task_ids,
            "only_failed": False,
            "include_downstream": True,
            "reset_dag_runs": True,
        }
        return list(
            self._call("POST", f"/dags/{quote(dag_id)}/clearTaskInstances", json=body)["task_instances"]
        )
