"""The UI app under FastAPI's TestClient: a real auth manager (the simple one, denying one DAG) with
real JWTs, the backend on fakeredis, and the task instance's DB rows (and, as on Airflow 3.4, its
tries) given by each test."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from redis_xcom.ui import values
from redis_xcom.ui.app import Attempt, MapIndex, TaskXComs, TryNumber, choose_attempt, create_app, task_xcoms

DAG, RUN, TASK = "etl", "manual__2024-01-01T00:00:00+00:00", "extract"
AUTH_MANAGER = "tests.ui.auth_manager.DenyOneDagAuthManager"


@dataclass
class UI:
    """A TestClient on the app, the rows it reads, and tokens for a reader."""

    client: TestClient
    token: str
    rows: list[values.XComRow] = field(default_factory=list)
    # Airflow 3.4's tries of the task instance; empty: an Airflow before 3.4 (no tries to choose).
    attempts: list[Attempt] = field(default_factory=list)
    asked_map_index: list[int] = field(default_factory=list)
    push: Callable[..., str] = field(default=lambda *a, **k: "")
    configure: Callable[..., None] = field(default=lambda **k: None)

    def add_row(self, key: str, value: Any, task: str = TASK, map_index: int = -1, **of: Any) -> None:
        """A row of the task instance as the DB holds it (of: task_instance_id, try_number)."""
        self.rows.append(values.XComRow(DAG, RUN, task, map_index, key, value, **of))

    def push_attempt(self, key: str, value: Any, try_number: int, latest: bool = False) -> str:
        """Store value as Airflow 3.4's try try_number does (its own task instance id) and add its row."""
        from tests.xcom34 import XCom34

        attempt = next((a for a in self.attempts if a.try_number == try_number), None)
        if attempt is None:
            attempt = Attempt(try_number, latest, True, (uuid.uuid4(),))
            self.attempts.append(attempt)
        (ti_id,) = attempt.task_instance_ids
        coordinate = SimpleNamespace(dag_id=DAG, run_id=RUN, task_id=TASK, ti_id=ti_id, region_index=-1)
        reference = str(XCom34.store_value(coordinate, key, value))
        self.add_row(key, reference, task_instance_id=ti_id, try_number=try_number)
        return reference

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def url(self, dag: str = DAG, run: str = RUN, task: str = TASK, api: bool = True) -> str:
        return f"{'/api' if api else ''}/dags/{dag}/runs/{run}/tasks/{task}"

    def xcoms(self, **params: Any) -> dict[str, dict[str, Any]]:
        """The JSON API's answer for the task instance, by key."""
        response = self.client.get(self.url(), params=params, headers=self.auth())
        assert response.status_code == 200, response.text
        return {x["key"]: x for x in response.json()["xcoms"]}

    def page(self, **params: Any) -> str:
        response = self.client.get(self.url(api=False), params=params, headers=self.auth())
        assert response.status_code == 200, response.text
        return response.text


def _no_db(monkeypatch: pytest.MonkeyPatch) -> None:
    """The two DB lookups of Airflow's auth path that these unit tests do not exercise (the browser
    test does, against a real metadata DB): multi-team ownership and revoked tokens."""
    from airflow.models.dag import DagModel

    monkeypatch.setattr(DagModel, "get_team_name", staticmethod(lambda *a, **k: None), raising=False)
    try:
        from airflow.models.revoked_token import RevokedToken
    except ImportError:  # Airflow before 3.2 has no token revocation
        return
    monkeypatch.setattr(RevokedToken, "is_revoked", classmethod(lambda cls, *a, **k: False))


@pytest.fixture
def auth_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The test auth manager as Airflow's configured one, with a JWT secret of the test's own."""
    from airflow.api_fastapi import app as airflow_app

    monkeypatch.setenv("AIRFLOW__CORE__AUTH_MANAGER", AUTH_MANAGER)
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_urlsafe(64))
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
    # The singleton: a module global before 3.1, _AuthManagerState.instance after.
    state = getattr(airflow_app, "_AuthManagerState", None)
    if state is not None:
        monkeypatch.setattr(state, "instance", None)
    else:
        monkeypatch.setattr(airflow_app, "auth_manager", None)
    _no_db(monkeypatch)
    yield airflow_app.create_auth_manager()


def token_for(manager: Any, role: str = "viewer") -> str:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return str(manager.generate_jwt(SimpleAuthManagerUser(username=f"a-{role}", role=role)))


@pytest.fixture
def ui(auth_manager: Any, fake_redis: Any, xcom_settings: pytest.MonkeyPatch) -> Iterator[UI]:
    from redis_xcom import ExclusiveRedisXCom

    values.reset_reader()
    app = create_app()
    state = UI(TestClient(app), token_for(auth_manager))

    # The DB read is Airflow's ORM query (covered by test_ui_server.py); here the rows are given.
    def given_xcoms(map_index: MapIndex, try_number: TryNumber) -> TaskXComs:
        state.asked_map_index.append(map_index)
        return given(state, try_number)

    app.dependency_overrides[task_xcoms] = given_xcoms

    def push(key: str, value: Any, task: str = TASK, map_index: int = -1) -> str:
        """Store value through the backend, as a task would, and add its row; returns the reference."""
        reference = ExclusiveRedisXCom.serialize_value(
            value, key=key, task_id=task, dag_id=DAG, run_id=RUN, map_index=map_index
        )
        state.add_row(key, reference, task=task, map_index=map_index)
        return str(reference)

    def configure(**options: str) -> None:
        """Set [redis_xcom] options; the backend and the reader read them again."""
        from redis_xcom.runtime import reset_runtime

        for name, value in options.items():
            xcom_settings.setenv(f"AIRFLOW__REDIS_XCOM__{name.upper()}", value)
        reset_runtime()
        values.reset_reader()

    state.push = push
    state.configure = configure
    yield state
    values.reset_reader()


def given(state: UI, try_number: int | None) -> TaskXComs:
    """The test's rows as the app's DB read gives them: all of them, or (with tries) those of the try
    asked for, chosen as the app chooses."""
    if not state.attempts:
        return TaskXComs(list(state.rows))
    shown = choose_attempt(state.attempts, try_number, "of the test")
    if shown is None:
        return TaskXComs([])
    rows = [row for row in state.rows if row.task_instance_id in shown.task_instance_ids]
    return TaskXComs(rows, shown.try_number, tuple(state.attempts))
