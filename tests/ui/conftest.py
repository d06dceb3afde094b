"""The UI app under FastAPI's TestClient: a real auth manager (the simple one, denying one DAG) with
real JWTs, the backend on fakeredis, and the task instance's DB rows given by each test."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient

from redis_xcom.ui import values
from redis_xcom.ui.app import MapIndex, create_app, xcom_rows

DAG, RUN, TASK = "etl", "manual__2024-01-01T00:00:00+00:00", "extract"
AUTH_MANAGER = "tests.ui.auth_manager.DenyOneDagAuthManager"


@dataclass
class UI:
    """A TestClient on the app, the rows it reads, and tokens for a reader."""

    client: TestClient
    token: str
    rows: list[tuple[str, Any]] = field(default_factory=list)
    asked_map_index: list[int] = field(default_factory=list)
    push: Callable[..., str] = field(default=lambda *a, **k: "")
    configure: Callable[..., None] = field(default=lambda **k: None)

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

    # The DB read is Airflow's ORM query (covered by the browser test); here the rows are given.
    def given_rows(map_index: MapIndex) -> list[tuple[str, Any]]:
        state.asked_map_index.append(map_index)
        return state.rows

    app.dependency_overrides[xcom_rows] = given_rows

    def push(key: str, value: Any, task: str = TASK, map_index: int = -1) -> str:
        """Store value through the backend, as a task would, and add its row; returns the reference."""
        reference = ExclusiveRedisXCom.serialize_value(
            value, key=key, task_id=task, dag_id=DAG, run_id=RUN, map_index=map_index
        )
        state.rows.append((key, reference))
        return str(reference)

    def configure(**options: str) -> None:
        """Set [redis_xcom] options; the backend and the reader read them again."""
        from redis_xcom.backend import reset_runtime

        for name, value in options.items():
            xcom_settings.setenv(f"AIRFLOW__REDIS_XCOM__{name.upper()}", value)
        reset_runtime()
        values.reset_reader()

    state.push = push
    state.configure = configure
    yield state
    values.reset_reader()
