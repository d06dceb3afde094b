"""Rows are user input: a row whose reference is not its own is shown as stored and never read; and on
Airflow 3.4 each try of a task instance shows its own values (tries given as the DB would give them)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import HTTPException

from redis_xcom import ExclusiveRedisXCom
from redis_xcom.codec import Codec
from redis_xcom.ui import values
from redis_xcom.ui.app import Attempt, per_attempt_rows, task_xcoms
from tests.ui.conftest import DAG, RUN, TASK, UI

SECRET = "salary of the CEO: 1234567"


class StoreSpy:
    """The reader's store, recording every call and the keys it names (reads, TTLs, MEMORY, deletes...)."""

    def __init__(self, store: Any, calls: list[tuple[str, str]] | None = None) -> None:
        self._store = store
        self.calls: list[tuple[str, str]] = [] if calls is None else calls

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if not callable(attribute):
            return attribute

        def recorded(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, repr((args, kwargs))))
            return attribute(*args, **kwargs)

        return recorded

    def named(self, redis_key: str) -> list[str]:
        """The calls that named redis_key."""
        return [name for name, args in self.calls if redis_key in args]


@pytest.fixture
def spy(ui: UI) -> Iterator[StoreSpy]:
    reader = values.reader()
    spied = StoreSpy(reader.store)
    reader.store = spied  # type: ignore[assignment]
    reader.info = StoreSpy(reader.info, spied.calls)  # type: ignore[assignment]  # MEMORY, TTL: same record
    yield spied


def _stored(value: Any, key: str, dag: str = DAG, task: str = TASK, map_index: int = -1) -> str:
    """A value stored by the backend as a task would (no row added); returns its reference."""
    return str(
        ExclusiveRedisXCom.serialize_value(
            value, key=key, task_id=task, dag_id=dag, run_id=RUN, map_index=map_index
        )
    )


def _foreign(fake_redis: Any) -> str:
    """Another DAG's real value in the same Redis, under our prefix; returns its reference."""
    reference = _stored(SECRET, "return_value", dag="payroll", task="salaries")
    assert Codec().decode(fake_redis.get(reference.removeprefix("redis-xcom://"))) == SECRET
    return reference


def _assert_untrusted(shown: dict[str, Any], stored: str, why: str) -> None:
    assert shown["state"] == "untrusted", shown
    assert shown["reference"] is None and shown["redis_key"] is None
    assert shown["size_bytes"] is None and shown["ttl_seconds"] is None
    assert json.loads(shown["preview"]["text"]) == stored  # the row as the DB holds it
    assert why in shown["message"]
    assert "edited through the REST API or the UI" in shown["message"]
    assert shown["message"].startswith(f"XCom(dag_id={DAG!r}, run_id={RUN!r}, task_id={TASK!r}, map_index=-1")


def test_a_reference_to_another_dags_value_is_shown_as_stored_and_never_read(
    ui: UI, fake_redis: Any, spy: StoreSpy
) -> None:
    stolen = _foreign(fake_redis)
    ui.add_row("stolen", stolen)
    own = ui.push("mine", {"ok": 1})
    shown = ui.xcoms()
    _assert_untrusted(
        shown["stolen"],
        stolen,
        f"its reference names XCom(dag_id='payroll', run_id={RUN!r}, task_id='salaries'",
    )
    assert shown["mine"]["state"] == "value" and json.loads(shown["mine"]["preview"]["text"]) == {"ok": 1}
    page = ui.page()
    assert SECRET not in json.dumps(shown) and SECRET not in page
    assert "untrusted reference, not read" in page and "not this row&#39;s value" in page
    assert "/value?key=stolen" not in page and "/value?key=mine" in page  # no download of it
    foreign_key = stolen.removeprefix("redis-xcom://")
    assert spy.named(foreign_key) == [], spy.calls
    assert spy.named(own.removeprefix("redis-xcom://")), "the row's own value was read"


def test_a_reference_to_a_key_that_is_no_xcom_is_never_read(ui: UI, fake_redis: Any, spy: StoreSpy) -> None:
    fake_redis.set("session:admin", SECRET)
    ui.add_row("session", "redis-xcom://session:admin")
    ui.add_row("glob", "redis-xcom://xcom:*")
    ui.add_row("other_prefix", f"redis-xcom://celery:{{{DAG}/{RUN}}}:{TASK}:-1:other_prefix")
    shown = ui.xcoms(decode="force")
    for key in ("session", "glob", "other_prefix"):
        stored = next(row.value for row in ui.rows if row.key == key)
        _assert_untrusted(shown[key], stored, "names no redis-xcom value under key_prefix 'xcom'")
    assert SECRET not in json.dumps(shown) and SECRET not in ui.page(decode="force")
    assert spy.calls == []  # nothing at all: no row was trusted


def test_a_reference_to_another_value_of_the_same_run_is_not_this_rows(ui: UI, spy: StoreSpy) -> None:
    """Another task's value, another key's, another map index's: each belongs to a row of its own."""
    ui.add_row("return_value", _stored(SECRET, "return_value", task="load"))
    ui.add_row("k2", _stored(SECRET, "k1"))
    ui.add_row("k3", _stored(SECRET, "k3", map_index=3))
    shown = ui.xcoms()
    for key, names in [
        ("return_value", "task_id='load'"),
        ("k2", "key='k1'"),
        ("k3", "map_index=3, key='k3'"),
    ]:
        stored = next(row.value for row in ui.rows if row.key == key)
        _assert_untrusted(shown[key], stored, f"its reference names XCom(dag_id={DAG!r}")
        assert names in shown[key]["message"]
    assert SECRET not in json.dumps(shown)
    assert spy.calls == []


def test_download_of_an_untrusted_row_is_refused_without_reading(ui: UI, fake_redis: Any) -> None:
    ui.configure(ui_max_decode_bytes="16")
    spy = StoreSpy(values.reader().store)
    values.reader().store = spy  # type: ignore[assignment]
    values.reader().info = StoreSpy(values.reader().info, spy.calls)  # type: ignore[assignment]
    ui.add_row("stolen", _foreign(fake_redis))
    fake_redis.set("session:admin", SECRET)
    ui.add_row("session", "redis-xcom://session:admin")
    for key in ("stolen", "session"):
        for params in ({}, {"decode": "force"}):
            response = ui.client.get(ui.url() + "/value", params={"key": key, **params}, headers=ui.auth())
            assert response.status_code == 409, response.text
            detail = response.json()["detail"]
            assert SECRET not in response.text
            assert f"task_id={TASK!r}, map_index=-1, key={key!r})" in detail
            assert "nothing is read from Redis" in detail
    assert spy.calls == []


# --- Airflow 3.4: every try its own task instance -------------------------------------------------


def test_each_try_shows_its_own_value_and_the_latest_by_default(ui: UI) -> None:
    ui.push_attempt("k", "try1", 1)
    ui.push_attempt("partial", {"written_by": "try1"}, 1)
    ui.push_attempt("k", "try2", 2, latest=True)
    answer = ui.client.get(ui.url(), headers=ui.auth()).json()
    assert answer["try_number"] == 2
    assert answer["attempts"] == [
        {"try_number": 1, "latest": False, "has_xcoms": True},
        {"try_number": 2, "latest": True, "has_xcoms": True},
    ]
    assert [x["key"] for x in answer["xcoms"]] == ["k"]
    assert json.loads(answer["xcoms"][0]["preview"]["text"]) == "try2"
    first = ui.xcoms(try_number="1")
    assert set(first) == {"k", "partial"}
    assert json.loads(first["k"]["preview"]["text"]) == "try1" and first["k"]["state"] == "value"
    for try_number, expected in (("1", "try1"), ("2", "try2"), (None, "try2")):
        params = {"key": "k"} if try_number is None else {"key": "k", "try_number": try_number}
        response = ui.client.get(ui.url() + "/value", params=params, headers=ui.auth())
        assert response.status_code == 200 and response.json() == expected, response.text
    named = ui.client.get(ui.url() + "/value", params={"key": "k", "try_number": "1"}, headers=ui.auth())
    assert 'filename="etl.extract.-1.k.try1.json"' in named.headers["content-disposition"]


def test_the_page_offers_every_try_with_xcoms_and_keeps_the_try_in_its_links(ui: UI) -> None:
    ui.configure(ui_max_decode_bytes="64")
    ui.push_attempt("k", "x" * 100, 1)
    ui.push_attempt("small", "s", 1)
    ui.attempts.append(Attempt(2, False, False, ()))  # a try that pushed nothing
    ui.push_attempt("k", "try3", 3, latest=True)
    page = ui.page()
    assert 'class="attempt current">3 (latest)</b>' in page
    assert 'href="?map_index=-1&amp;try_number=1">1</a>' in page
    assert "try_number=2" not in page  # no XComs: nothing to show there
    first = ui.page(try_number="1")
    assert 'class="attempt current">1</b>' in first and 'try_number=3">3 (latest)</a>' in first
    assert 'try <code class="try">1</code>' in first
    assert 'href="?map_index=-1&amp;try_number=1&amp;decode=force">Decode anyway' in first
    assert "/value?key=small&amp;map_index=-1&amp;try_number=1" in first


def test_a_try_whose_row_names_another_tries_value_is_untrusted(ui: UI, spy: StoreSpy) -> None:
    """A row copied from try 2 into try 1 (through the REST API, say) must not show try 2's value."""
    ui.push_attempt("k", "try1", 1)
    second = ui.push_attempt("k", "try2", 2, latest=True)
    ui.rows = [row for row in ui.rows if row.try_number == 2]
    ui.add_row("k", second, task_instance_id=ui.attempts[0].task_instance_ids[0], try_number=1)
    shown = ui.xcoms(try_number="1")["k"]
    _assert_untrusted(shown, second, f"task_instance_id={ui.attempts[1].task_instance_ids[0]}")
    assert "try_number=1)" in shown["message"]
    assert spy.calls == []
    assert ui.xcoms()["k"]["state"] == "value"


def test_a_try_that_does_not_exist_or_is_no_number_is_refused(ui: UI) -> None:
    ui.push_attempt("k", "try1", 1, latest=True)
    missing = ui.client.get(ui.url(), params={"try_number": "7"}, headers=ui.auth())
    assert missing.status_code == 404 and "has no try 7 (its tries: 1)" in missing.json()["detail"]
    for bad in ("abc", "-1", "1.5"):
        response = ui.client.get(ui.url(), params={"try_number": bad}, headers=ui.auth())
        assert response.status_code == 400 and "try_number" in response.json()["detail"], bad
    assert ui.client.get(ui.url(api=False), params={"try_number": "7"}, headers=ui.auth()).status_code == 404


def test_without_tries_the_answer_and_page_are_those_before_airflow_3_4(ui: UI) -> None:
    ui.push("k", 1)
    answer = ui.client.get(ui.url(), headers=ui.auth()).json()
    assert answer["try_number"] is None and answer["attempts"] == []
    page = ui.page()
    assert 'class="attempts"' not in page and "try_number" not in page


@pytest.mark.skipif(
    per_attempt_rows(), reason="Airflow 3.4 takes try_number (tested above and in test_ui_server.py)"
)
def test_try_number_before_airflow_3_4_is_refused_with_why() -> None:
    with pytest.raises(HTTPException) as refused:
        task_xcoms(DAG, RUN, TASK, -1, 1, session=None)  # type: ignore[arg-type]
    assert refused.value.status_code == 400
    assert "try_number needs Airflow 3.4" in str(refused.value.detail)
