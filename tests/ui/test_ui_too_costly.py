"""The routes when a value is too costly to display (under FastAPI's TestClient, with small sandbox
limits): the JSON API says so with its sizes (state too_costly), the page too, the download answers
413 with the same state and sizes; a value no worker could hold is not even read; every worker busy
is a 503 to ask again. tests/ui/test_ui_server.py does the same through a real api-server."""

from __future__ import annotations

from typing import Any

import pytest

from redis_xcom.codec import Codec, recorded_length
from redis_xcom.storage.store import RedisStore
from redis_xcom.ui import values
from tests.ui.conftest import UI
from tests.ui.hostile import empty_maps

MiB = 1 << 20


@pytest.fixture
def small(ui: UI) -> UI:
    """Sandbox limits that the hostile values breach quickly."""
    ui.configure(
        ui_sandbox_memory_mb="256",
        ui_sandbox_cpu_seconds="2",
        ui_sandbox_timeout_seconds="20",
        ui_sandbox_max_output_bytes=str(MiB),
        ui_sandbox_workers="1",
    )
    return ui


def _plant(ui: UI, fake_redis: Any, key: str, data: bytes) -> None:
    """A value pushed as a task would, its bytes in Redis then replaced by data (the row stays its own)."""
    reference = ui.push(key, "placeholder")
    fake_redis.set(reference.removeprefix("redis-xcom://"), data)


def _download(ui: UI, key: str, **params: str) -> Any:
    return ui.client.get(ui.url() + "/value", params={"key": key, **params}, headers=ui.auth())


def test_a_value_too_costly_to_decode_says_so_everywhere_with_its_sizes(small: UI, fake_redis: Any) -> None:
    data = empty_maps()  # 30M empty maps in 29 KB: 2 GB of dicts
    # CPU time to spare: on a loaded machine building 256 MB of dicts can take over 2 s of it.
    small.configure(ui_sandbox_cpu_seconds="30", ui_sandbox_timeout_seconds="60")
    _plant(small, fake_redis, "maps", data)
    small.push("fine", {"rows": 3})
    shown = small.xcoms()
    maps = shown["maps"]
    assert maps["state"] == "too_costly" and maps["preview"] is None, maps
    assert maps["recorded_bytes"] == recorded_length(data) == 30_000_005
    assert maps["size_bytes"] >= len(data)
    assert maps["message"].startswith("Too costly to display: ") and "ui_sandbox_memory_mb" in maps["message"]
    assert f"It takes {maps['size_bytes']} bytes in Redis and records 30000005 bytes" in maps["message"]
    assert shown["fine"]["state"] == "value", "the other values of the page still show"
    page = small.page()
    assert "too costly to display" in page and "It takes" in page
    assert "/value?key=maps" not in page and "Decode anyway" not in page
    for params in ({}, {"decode": "force"}):  # forcing lifts ui_max_decode_bytes, not the sandbox's limits
        refused = _download(small, "maps", **params)
        assert refused.status_code == 413, refused.text
        assert refused.json() == {
            "detail": refused.json()["detail"],
            "state": "too_costly",
            "size_bytes": maps["size_bytes"],
            "recorded_bytes": 30_000_005,
        }
        assert (
            "key='maps'" in refused.json()["detail"] and "Too costly to display" in refused.json()["detail"]
        )


def test_a_value_whose_json_is_too_long_shows_but_is_not_downloaded(small: UI, fake_redis: Any) -> None:
    small.push("arrays", [f"item-{i}" for i in range(200_000)])  # about 3 MB as JSON, above the 1 MiB bound
    shown = small.xcoms()["arrays"]
    assert shown["state"] == "value" and shown["type"] == "list", shown
    refused = _download(small, "arrays")
    assert refused.status_code == 413 and refused.json()["state"] == "too_costly", refused.text
    assert "ui_sandbox_max_output_bytes" in refused.json()["detail"]


def test_a_value_the_codec_refuses_to_materialize_is_too_costly(small: UI) -> None:
    np = pytest.importorskip("numpy")
    small.push("zero_width", np.zeros(10**7, dtype="V0"))  # 10M elements in no bytes
    shown = small.xcoms()["zero_width"]
    assert shown["state"] == "too_costly" and "the codec refused to decode it" in shown["message"], shown
    assert _download(small, "zero_width").json()["state"] == "too_costly"


def test_a_value_no_worker_could_hold_is_refused_without_being_read(
    ui: UI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 70 MiB once decompressed, in a few KB: above the workers' 64 MiB, below ui_max_decode_bytes.
    ui.configure(ui_sandbox_memory_mb="64", ui_max_decode_bytes=str(128 * MiB))
    ui.configure(compression="zlib", compression_threshold="0")
    ui.push("big", "x" * (70 * MiB))
    ui.push("small", "y")
    read: list[str] = []
    real_get_many = RedisStore.get_many

    def counted(self: RedisStore, keys: list[str]) -> list[bytes | None]:
        read.extend(keys)
        return real_get_many(self, keys)

    monkeypatch.setattr(RedisStore, "get_many", counted)
    monkeypatch.setattr(RedisStore, "get", lambda self, key: read.append(key))
    for params in ({}, {"decode": "force"}):
        shown = ui.xcoms(**params)
        assert shown["big"]["state"] == "too_costly", shown["big"]
        assert f"needs at least {shown['big']['recorded_bytes']} bytes" in shown["big"]["message"]
        assert shown["small"]["state"] == "value"
        assert _download(ui, "big", **params).status_code == 413
    assert all(":big" not in key for key in read), read


def test_every_worker_busy_is_a_503_to_ask_again(ui: UI) -> None:
    ui.configure(ui_sandbox_workers="1", ui_sandbox_timeout_seconds="0.3")
    ui.push("k", {"v": 1})
    box = values.reader().sandbox
    held = box._acquire(1e18)  # the only worker, busy with another request
    assert held is not None
    try:
        busy = _download(ui, "k")
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1", busy.text
        assert "ui_sandbox_workers = 1" in busy.json()["detail"]
        shown = ui.xcoms()["k"]
        assert shown["state"] == "error" and "busy" in shown["message"], shown
    finally:
        box._release(held, keep=True)
    assert _download(ui, "k").json() == {"v": 1}


def test_the_api_server_decodes_nothing_itself(ui: UI, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the API server decoded a value itself")

    monkeypatch.setattr(Codec, "decode", refuse)
    monkeypatch.setattr(Codec, "_decode_as_data", refuse)
    ui.push("k", {"v": [1, 2]})
    assert ui.xcoms()["k"]["state"] == "value"
    assert _download(ui, "k").json() == {"v": [1, 2]}
