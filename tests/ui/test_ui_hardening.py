"""Bad input to the UI fails alone and plainly: one altered value, an absurd query parameter, and the
token cookie Airflow 3.0's handover page sets."""

from __future__ import annotations

from typing import Any

from redis_xcom.storage.store import pack_manifest
from tests.ui.conftest import UI


def test_one_chunked_value_with_an_altered_manifest_fails_alone(ui: UI, fake_redis: Any) -> None:
    ui.configure(chunk_bytes="1024")
    bad = ui.push("altered", "y" * 5000)
    ui.push("intact", "z" * 5000)
    ui.push("small", 7)
    # A manifest announcing more chunks than the list holds: truncated or altered.
    fake_redis.lset(bad.removeprefix("redis-xcom://"), 0, pack_manifest(99, 99 * 1024))
    shown = ui.xcoms()
    assert shown["altered"]["state"] == "error" and "announces 99 chunks" in shown["altered"]["message"]
    assert "key='altered'" in shown["altered"]["message"]
    assert shown["intact"]["state"] == "value" and shown["intact"]["preview"]["text"].startswith('"zzz')
    assert shown["small"]["state"] == "value" and shown["small"]["preview"]["text"] == "7"


def test_absurd_map_index_and_try_number_are_refused_with_400_not_500(ui: UI) -> None:
    ui.push("k", 1)
    for params in ({"map_index": "9" * 4400}, {"try_number": "9" * 4400}, {"try_number": "\u00b2"}):
        answer = ui.client.get(ui.url(), params=params, headers=ui.auth())
        assert answer.status_code == 400, (params, answer.status_code)
        assert len(answer.text) < 500, "the refusal does not echo thousands of digits"


def test_the_token_cookie_is_samesite_strict_and_secure_over_https(ui: UI) -> None:
    page = ui.client.get(ui.url(api=False))  # no token: the page that hands Airflow 3.0's over
    assert page.status_code == 401
    assert "SameSite=Strict" in page.text
    assert 'location.protocol === "https:" ? "; Secure"' in page.text
