"""Airflow's state store REST routes (list, get, put, delete, clear of task and asset state) on a real
`airflow api-server`, with RedisStateStoreBackend as ``[workers] state_store_backend``.

Airflow's public routes (core_api/routes/public/task_state_store.py, asset_state_store.py, 3.3.2 and
3.4.0b2 alike) read the state tables directly and write through MetastoreBackend, whatever
``[state_store] backend`` says: they see what the worker-side setting leaves in the rows (references)
and nothing of what a server-side backend keeps. So the api-server here runs the worker-side setting,
the one under which these routes show a task's state. Through them:

* list and get show each key with its reference, and the reference resolves to the value in Redis;
* the 64 KB ``max_value_storage_bytes`` cap of REST writes still applies;
* delete and clear remove the keys;
* a reference forged (through PUT) into one asset's row, naming a task's state or another asset's, is
  refused when a task reads it: the other scope's value never reaches the task.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.redis_process import RedisServer
from tests.state_store.dags.state_rest_writer import SECRET
from tests.state_store.example_runs import BACKEND, BEFORE_3_3_REASON, REF_KEY, has_state_store, is_reference
from tests.ui.server import ApiServer, api_server

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not has_state_store(), reason=BEFORE_3_3_REASON),
]

DAGS = Path(__file__).parent / "state_store" / "dags"
ADMIN = "admin"
WRITER, READER = "state_rest_writer", "state_rest_reader"
REST_CAP = 65535  # [state_store] max_value_storage_bytes, Airflow's default
TTL = 3600


@dataclass
class Served:
    server: ApiServer
    redis: RedisServer
    prefix: str

    @property
    def home(self) -> Path:
        return self.server.deployment.home

    def task_path(self, key: str | None = None) -> str:
        run = quote(self.server.run_ids[WRITER], safe="")
        path = f"/api/v2/dags/{WRITER}/dagRuns/{run}/taskInstances/write/state-store"
        return path if key is None else f"{path}/{quote(key, safe='')}"

    def asset_path(self, name: str, key: str | None = None) -> str:
        path = f"/api/v2/assets/{self.asset_id(name)}/state-store"
        return path if key is None else f"{path}/{quote(key, safe='')}"

    def asset_id(self, name: str) -> int:
        with contextlib.closing(sqlite3.connect(self.home / "airflow.db")) as db:
            (row,) = db.execute("SELECT id FROM asset WHERE name = ?", (name,)).fetchall()
        return int(row[0])

    def get(self, path: str) -> Any:
        response = self.server.get(path, ADMIN)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    def put(self, path: str, value: Any) -> Any:
        import requests

        return requests.put(
            self.server.url + path, json={"value": value}, headers=self.server.headers(ADMIN), timeout=30
        )

    def delete(self, path: str, **params: Any) -> Any:
        import requests

        return requests.delete(
            self.server.url + path, params=params, headers=self.server.headers(ADMIN), timeout=30
        )

    def resolve(self, ref: str, asset: bool = False) -> Any:
        """What a task's get returns for a reference: read through the worker-side hook."""
        from redis_xcom import RedisStateStoreBackend
        from tests.state_store.example_runs import redis_xcom_settings

        with redis_xcom_settings(self.redis.url, self.prefix):
            backend = RedisStateStoreBackend()
            if asset:
                return backend.deserialize_asset_state_store_from_ref(ref)
            return backend.deserialize_task_state_store_from_ref(ref)


@pytest.fixture(scope="module")
def served(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    prefix = f"ss-rest-{uuid.uuid4().hex[:8]}"
    settings = {"AIRFLOW__WORKERS__STATE_STORE_BACKEND": BACKEND}
    with api_server(
        tmp_path_factory.mktemp("state-rest"),
        redis_server.url,
        prefix,
        TTL,
        [f"{WRITER}.py"],
        {ADMIN: "admin"},
        dags=DAGS,
        extra_settings=settings,
    ) as server:
        yield Served(server, redis_server, prefix)


def test_list_and_get_show_references_that_resolve_to_the_values_in_redis(served: Served) -> None:
    listed = served.get(served.task_path())
    assert listed["total_entries"] == 2
    entries = {e["key"]: e["value"] for e in listed["task_state_store"]}
    assert set(entries) == {"job_id", "cursor"}
    assert all(is_reference(v) for v in entries.values()), entries
    one = served.get(served.task_path("cursor"))
    assert one["value"] == entries["cursor"]
    assert served.resolve(one["value"][REF_KEY]) == {"page": 3, "token": "abc"}
    assert served.resolve(entries["job_id"][REF_KEY]) == "job-42"
    asset = served.get(served.asset_path("state_rest_orders"))
    (entry,) = asset["asset_state_store"]
    assert entry["key"] == "watermark" and is_reference(entry["value"])
    assert served.resolve(entry["value"][REF_KEY], asset=True) == "2026-01-02T00:00:00+00:00"


def test_rest_writes_keep_the_64_kb_cap(served: Served) -> None:
    over = served.put(served.task_path("too_big"), "x" * REST_CAP)  # JSON text: two quotes more
    assert over.status_code == 422, over.text
    assert served.server.get(served.task_path("too_big"), ADMIN).status_code == 404
    under = served.put(served.task_path("just_under"), "x" * (REST_CAP - 100))
    assert under.status_code == 204, under.text
    # A REST write goes to the row as it is (the worker-side hook is not on this path).
    assert served.get(served.task_path("just_under"))["value"] == "x" * (REST_CAP - 100)
    assert served.put(served.asset_path("state_rest_orders", "too_big"), "x" * REST_CAP).status_code == 422
    assert served.delete(served.task_path("just_under")).status_code == 204


def test_delete_and_clear_remove_the_keys(served: Served) -> None:
    assert served.put(served.task_path("scratch_a"), 1).status_code == 204
    assert served.put(served.task_path("scratch_b"), 2).status_code == 204
    assert served.delete(served.task_path("scratch_a")).status_code == 204
    assert served.server.get(served.task_path("scratch_a"), ADMIN).status_code == 404
    assert served.delete(served.task_path("scratch_a")).status_code == 204  # deleting twice is a no-op
    keys = {e["key"] for e in served.get(served.task_path())["task_state_store"]}
    assert "scratch_a" not in keys and "scratch_b" in keys
    assert served.put(served.asset_path("state_rest_payroll", "scratch"), 3).status_code == 204
    assert served.delete(served.asset_path("state_rest_payroll", "scratch")).status_code == 204
    assert served.server.get(served.asset_path("state_rest_payroll", "scratch"), ADMIN).status_code == 404


def test_a_reference_forged_into_another_scopes_row_is_not_followed(served: Served) -> None:
    """PUT writes a row verbatim: a reference copied from the writer task's row and from the payroll
    asset's row into the orders asset's rows. A task reading orders must not get either value."""
    task_ref = served.get(served.task_path("job_id"))["value"]
    payroll_ref = served.get(served.asset_path("state_rest_payroll", "secret"))["value"]
    assert is_reference(task_ref) and is_reference(payroll_ref)
    assert served.resolve(payroll_ref[REF_KEY], asset=True) == SECRET  # the reference itself is sound
    orders = "state_rest_orders"
    assert served.put(served.asset_path(orders, "forged_task_ref"), task_ref).status_code == 204
    assert served.put(served.asset_path(orders, "forged_asset_ref"), payroll_ref).status_code == 204

    served.server.deployment.add_dags([DAGS / f"{READER}.py"])
    served.server.deployment.run(f"dags-test-{READER}", ["dags", "test", READER], timeout=600)
    log = (served.server.deployment.process_logs / f"dags-test-{READER}.log").read_text(errors="replace")
    assert "STATE-READ watermark '2026-01-02T00:00:00+00:00'" in log, log[-3000:]
    assert "STATE-REFUSED forged_task_ref UntrustedReferenceError" in log, log[-3000:]
    assert "STATE-REFUSED forged_asset_ref UntrustedReferenceError" in log, log[-3000:]
    assert SECRET not in log and "job-42" not in log


def test_clear_removes_every_key_of_the_scope(served: Served) -> None:
    # Last in the module: it empties the writer task's and the orders asset's state.
    assert served.delete(served.task_path()).status_code == 204
    assert served.get(served.task_path()) == {"task_state_store": [], "total_entries": 0}
    assert served.delete(served.asset_path("state_rest_orders")).status_code == 204
    assert served.get(served.asset_path("state_rest_orders"))["total_entries"] == 0
    # Another scope is untouched.
    assert served.get(served.asset_path("state_rest_payroll"))["total_entries"] == 1
