"""The UI plugin's routes on a real `airflow api-server`, over Airflow's own DB: rows forged through the
REST API show as stored and their keys are never touched (MONITOR sees every command the api-server
sends to Redis), on Airflow 3.4 each try of a retried task shows its own values, and values crafted to
cost far more than they take in Redis (tests/ui/hostile.py) show as too costly to display, quickly,
without a server error and without the api-server growing (its sandbox workers bear the cost).

No browser: this runs in the version matrix too (test_ui_browser.py opens the page in chromium).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from redis_xcom import keys
from redis_xcom.codec import recorded_length
from tests.airflow_limits import PER_ATTEMPT_REASON, per_attempt_xcoms
from tests.redis_process import RedisServer
from tests.ui.auth_manager import DENIED_DAG
from tests.ui.dags.payroll import SECRET
from tests.ui.dags.ui_costly import NAMES
from tests.ui.hostile import HOSTILE
from tests.ui.memory import peak_growth
from tests.ui.server import ApiServer, api_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

READER, EDITOR = "reader", "editor"
TTL = 3600
TASK_API = "/redis-xcom/api/dags/{dag}/runs/{run}/tasks/{task}"
TASK_PAGE = "/redis-xcom/dags/{dag}/runs/{run}/tasks/{task}"


@dataclass
class Served:
    server: ApiServer
    redis: RedisServer
    prefix: str

    def api(self, dag: str, task: str, suffix: str = "", **params: Any) -> Any:
        """The plugin's JSON API as the reader (the response; its JSON for the task's XComs)."""
        path = TASK_API.format(dag=dag, run=self.server.run_ids[dag], task=task) + suffix
        return self.server.get(path, READER, **params)

    def page(self, dag: str, task: str, **params: Any) -> str:
        path = TASK_PAGE.format(dag=dag, run=self.server.run_ids[dag], task=task)
        response = self.server.get(path, READER, **params)
        assert response.status_code == 200, response.text
        return response.text

    def xcoms(self, dag: str, task: str, **params: Any) -> dict[str, Any]:
        response = self.api(dag, task, **params)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def served(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    prefix = f"ui-server-{uuid.uuid4().hex[:8]}"
    dags = [f"{DENIED_DAG}.py", "ui_trust.py", "ui_costly.py"]
    dags += ["ui_attempts.py"] if per_attempt_xcoms() else []
    home = tmp_path_factory.mktemp("ui-server-airflow-home")
    users = {READER: "viewer", EDITOR: "admin"}
    with api_server(home, redis_server.url, prefix, TTL, dags, users) as server:
        yield Served(server, redis_server, prefix)


@contextmanager
def redis_commands(server: RedisServer) -> Iterator[list[str]]:
    """Every command the redis-server runs inside the block (MONITOR), filled in when it ends."""
    seen: list[str] = []
    with server.client(socket_timeout=60).monitor() as monitor:
        yield seen
        marker = f"end-of-block-{uuid.uuid4().hex}"
        server.client().echo(marker)
        for command in monitor.listen():
            if marker in command["command"]:
                break
            seen.append(command["command"])


def _forge(served: Served, key: str, value: str) -> None:
    """A row of ui_trust's extract added through Airflow's REST API by a user who may write XComs."""
    run = served.server.run_ids["ui_trust"]
    response = served.server.post(
        f"/api/v2/dags/ui_trust/dagRuns/{run}/taskInstances/extract/xcomEntries",
        EDITOR,
        {"key": key, "value": value},
    )
    assert response.status_code == 201, response.text


def _payroll_reference(served: Served) -> str:
    """The reference of the denied DAG's value, as its row holds it (its one key in Redis)."""
    client = served.redis.client()
    tag = keys.run_tag(served.prefix, DENIED_DAG, served.server.run_ids[DENIED_DAG])
    (found,) = [k.decode() for k in client.scan_iter(match=tag + ":*")]
    assert SECRET.encode() in client.get(found)  # type: ignore[operator]
    return keys.to_reference(found)


def test_forged_rows_show_as_stored_and_their_keys_are_never_touched(served: Served) -> None:
    stolen = _payroll_reference(served)
    session_key = f"session:{served.prefix}"
    client = served.redis.client()
    client.set(session_key, SECRET, ex=TTL)
    _forge(served, "stolen", stolen)
    _forge(served, "session", keys.to_reference(session_key))
    denied = served.api(DENIED_DAG, "salaries")
    assert denied.status_code == 403, denied.text  # the reader may not read payroll's XComs at all

    with redis_commands(served.redis) as commands:
        shown = {x["key"]: x for x in served.xcoms("ui_trust", "extract")["xcoms"]}
        forced = {x["key"]: x for x in served.xcoms("ui_trust", "extract", decode="force")["xcoms"]}
        page = served.page("ui_trust", "extract")
        downloads = [
            served.api("ui_trust", "extract", "/value", key=key, **params)
            for key in ("stolen", "session")
            for params in ({}, {"decode": "force"})
        ]
    for answer in (shown, forced):
        assert answer["return_value"]["state"] == "value"
        assert json.loads(answer["return_value"]["preview"]["text"]) == {"mine": 1}
        for key, stored in (("stolen", stolen), ("session", keys.to_reference(session_key))):
            assert answer[key]["state"] == "untrusted", answer[key]
            assert answer[key]["redis_key"] is None and answer[key]["size_bytes"] is None
            assert json.loads(answer[key]["preview"]["text"]) == stored
            assert "edited through the REST API or the UI" in answer[key]["message"]
            assert "task_id='extract', map_index=-1" in answer[key]["message"]
    assert "dag_id='payroll'" in shown["stolen"]["message"]
    assert "under key_prefix" in shown["session"]["message"]
    assert "untrusted reference, not read" in page
    assert [response.status_code for response in downloads] == [409] * 4, [r.text for r in downloads]
    everything = json.dumps([shown, forced]) + page + "".join(r.text for r in downloads)
    assert SECRET not in everything
    # The api-server read the row's own value, and nothing of the forged rows' keys.
    own = shown["return_value"]["redis_key"]
    assert any(own in command for command in commands), commands
    touched = [c for c in commands if stolen.removeprefix("redis-xcom://") in c or session_key in c]
    assert touched == [], touched


@pytest.mark.skipif(per_attempt_xcoms(), reason="Airflow 3.4 takes try_number (the test below)")
def test_try_number_is_refused_before_airflow_3_4(served: Served) -> None:
    response = served.api("ui_trust", "extract", try_number="1")
    assert response.status_code == 400 and "needs Airflow 3.4" in response.json()["detail"]
    answer = served.xcoms("ui_trust", "extract")
    assert answer["try_number"] is None and answer["attempts"] == []
    assert 'class="attempts"' not in served.page("ui_trust", "extract")


@pytest.mark.skipif(not per_attempt_xcoms(), reason=PER_ATTEMPT_REASON)
def test_each_try_of_a_retried_task_shows_its_own_values(served: Served) -> None:
    latest = served.xcoms("ui_attempts", "flaky")
    assert latest["try_number"] == 2
    assert latest["attempts"] == [
        {"try_number": 1, "latest": False, "has_xcoms": True},
        {"try_number": 2, "latest": True, "has_xcoms": True},
    ]
    previews = {x["key"]: json.loads(x["preview"]["text"]) for x in latest["xcoms"] if x["state"] == "value"}
    assert previews == {"k": "try2", "return_value": {"done_by": "try2"}}, latest["xcoms"]

    first = served.xcoms("ui_attempts", "flaky", try_number="1")
    assert first["try_number"] == 1
    previews = {x["key"]: json.loads(x["preview"]["text"]) for x in first["xcoms"] if x["state"] == "value"}
    assert previews == {"k": "try1", "partial": {"written_by": "try1"}}, first["xcoms"]
    assert first["xcoms"][0]["redis_key"] != latest["xcoms"][0]["redis_key"]

    for try_number, expected in (("1", "try1"), ("2", "try2"), ("", "try2")):
        value = served.api("ui_attempts", "flaky", "/value", key="k", try_number=try_number)
        assert value.status_code == 200 and value.json() == expected, value.text
    page = served.page("ui_attempts", "flaky")
    assert 'href="?map_index=-1&amp;try_number=1">1</a>' in page and "2 (latest)</b>" in page
    assert "&#34;try2&#34;" in page and "&#34;try1&#34;" not in page
    assert "&#34;try1&#34;" in served.page("ui_attempts", "flaky", try_number="1")
    missing = served.api("ui_attempts", "flaky", try_number="5")
    assert missing.status_code == 404 and "its tries: 1, 2" in missing.json()["detail"]


# --- values that cost far more to show than they take in Redis -------------------------------------

# What the api-server may grow by, and take, for one request about one such value.
MAX_GROWTH_MIB = 300
MAX_SECONDS = 10
# Where each value must be refused; elsewhere it may show (a preview reads 20 rows or elements).
REFUSED: dict[str, set[str]] = {
    "string_view_frame": {"page", "api", "download"},  # the decode itself converts 1M strings
    # The codec refuses to build the next four at all (what they materialize, their hash flood).
    "string_view_table": {"page", "api", "download"},
    "empty_maps": {"page", "api", "download"},
    "colliding_keys": {"page", "api", "download"},
    "u0_arrays": {"page", "api", "download"},
}


def _plant(served: Served, task: str, data: bytes) -> None:
    """The task's own value in Redis replaced by data: its row's reference is its own, so it is followed."""
    (row,) = served.xcoms("ui_costly", task)["xcoms"]
    assert row["state"] == "value", row
    served.redis.client().set(row["redis_key"], data, ex=TTL)


def _timed(served: Served, route: str, task: str) -> tuple[Any, float, float]:
    """(response, seconds, MiB the api-server's peak RSS grew by) for one route about one task; a
    request still unanswered after 30 s fails the test there."""
    path = {"page": TASK_PAGE, "api": TASK_API, "download": TASK_API + "/value"}[route]
    params = {"key": "return_value"} if route == "download" else {}
    with peak_growth(served.server.pid) as growth:
        started = time.monotonic()
        response = served.server.get(
            path.format(dag="ui_costly", run=served.server.run_ids["ui_costly"], task=task), READER, **params
        )
        seconds = time.monotonic() - started
    return response, seconds, growth.mib


@pytest.mark.parametrize("name", NAMES)
def test_a_value_too_costly_to_show_is_refused_quickly_and_the_server_does_not_grow(
    served: Served, name: str
) -> None:
    assert set(NAMES) == set(HOSTILE) == set(REFUSED)
    data = HOSTILE[name]()
    _plant(served, name, data)
    answers = {route: _timed(served, route, name) for route in ("api", "page", "download")}
    for route, (response, seconds, grown) in answers.items():
        where = f"{name}, {route}: {response.status_code} in {seconds:.1f} s, +{grown:.0f} MiB"
        assert response.status_code < 500, f"{where}: {response.text[:500]}"
        assert seconds < MAX_SECONDS, where
        assert grown < MAX_GROWTH_MIB, where

    api, page, download = (answers[route][0] for route in ("api", "page", "download"))
    (row,) = api.json()["xcoms"]
    refused = REFUSED[name]
    assert row["state"] == ("too_costly" if "api" in refused else "value"), (name, row)
    # Its size in Redis (MEMORY USAGE: the bytes and the allocator's rounding), and once decompressed.
    stored, recorded = row["size_bytes"], row["recorded_bytes"]
    assert len(data) <= stored <= 2 * len(data) + 4096 and recorded == recorded_length(data), (name, row)
    if "api" in refused:
        assert row["preview"] is None and row["message"].startswith("Too costly to display"), row
    assert ("too costly to display" in page.text) == ("page" in refused), name
    if "page" in refused:
        assert f"It takes {stored} bytes in Redis and records {recorded} bytes" in page.text, name
    assert download.status_code == (413 if "download" in refused else 200), (name, download.text[:500])
    if "download" in refused:
        answer = download.json()
        assert answer["state"] == "too_costly" and "Too costly to display" in answer["detail"], answer
        assert (answer["size_bytes"], answer["recorded_bytes"]) == (stored, recorded), answer
    # A plain value of the same api-server shows as ever: the sandbox's workers were replaced.
    plain = served.xcoms("ui_trust", "extract")["xcoms"]
    assert [x["state"] for x in plain if x["key"] == "return_value"] == ["value"]
