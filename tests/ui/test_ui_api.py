"""The UI's JSON API and page under FastAPI's TestClient: what a reader sees of each XCom, and who may."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import json
from typing import Any

import pytest

from redis_xcom.codec import Codec
from redis_xcom.storage.client import build_connection as real_build_connection
from redis_xcom.storage.store import RedisStore
from tests.ui.auth_manager import DENIED_DAG
from tests.ui.conftest import DAG, RUN, UI

pd = pytest.importorskip("pandas", reason="the [pandas] extra is part of the dev install")
np = pytest.importorskip("numpy", reason="the [numpy] extra is part of the dev install")


def test_plain_value_shows_as_json_with_its_size_ttl_and_reference(ui: UI) -> None:
    reference = ui.push("return_value", {"rows": [1, 2, 3], "name": "ünïcode"})
    shown = ui.xcoms()["return_value"]
    assert shown["state"] == "value"
    assert shown["reference"] == reference
    assert shown["redis_key"] == reference.removeprefix("redis-xcom://")
    assert shown["type"] == "dict"
    assert shown["preview"]["kind"] == "json"
    assert json.loads(shown["preview"]["text"]) == {"rows": [1, 2, 3], "name": "ünïcode"}
    assert shown["preview"]["text"].startswith('{\n  "rows"')  # indented
    assert shown["size_bytes"] == len(Codec().encode({"rows": [1, 2, 3], "name": "ünïcode"}))
    assert 604790 < shown["ttl_seconds"] <= 604800  # the default ttl, counting down


def test_datetimes_decimals_tuples_and_sets_show_as_themselves(ui: UI) -> None:
    when = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    ui.push("rich", {"when": when, "amount": decimal.Decimal("1.10"), "pair": (1, "a"), "tags": {"x", "y"}})
    text = ui.xcoms()["rich"]["preview"]["text"]
    assert repr(when) in text
    assert "Decimal('1.10')" in text
    assert '(\n    1,\n    "a"\n  )' in text
    assert '{\n    "x",\n    "y"\n  }' in text


def test_bytes_show_their_size_and_a_hex_head(ui: UI) -> None:
    ui.push("blob", b"PK\x03\x04" + bytes(range(256)) * 20)
    preview = ui.xcoms()["blob"]["preview"]
    assert preview["kind"] == "bytes" and preview["type"] == "bytes"
    assert preview["text"].startswith("5124 bytes (the first 256 shown)\n00000000  50 4b 03 04 00 01")
    assert len(preview["text"].splitlines()) == 1 + 256 // 16


def test_dataframe_shows_its_first_rows_shape_and_dtypes(ui: UI) -> None:
    frame = pd.DataFrame({"city": [f"c{i}" for i in range(50)], "temp": [i / 2 for i in range(50)]})
    ui.push("frame", frame)
    preview = ui.xcoms()["frame"]["preview"]
    assert preview["kind"] == "table" and preview["type"] == "pandas.DataFrame"
    assert preview["shape"] == [50, 2]
    assert (
        preview["dtypes"] == {"city": "object", "temp": "float64"} or preview["dtypes"]["temp"] == "float64"
    )
    assert preview["columns"] == ["city", "temp"]
    assert preview["rows"][:2] == [["c0", "0.0"], ["c1", "0.5"]]
    assert len(preview["rows"]) == 20 and preview["truncated"]
    page = ui.page()
    assert "<th>city</th>" in page and "<td>c19</td>" in page and "First 20 of 50 rows" in page


def test_arrow_table_shows_as_a_table(ui: UI) -> None:
    pa = pytest.importorskip("pyarrow", reason="the [arrow] extra is part of the dev install")
    ui.push("table", pa.table({"id": [1, 2, 3]}))
    preview = ui.xcoms()["table"]["preview"]
    assert preview["kind"] == "table" and preview["shape"] == [3, 1]
    assert preview["rows"] == [["1"], ["2"], ["3"]] and preview["dtypes"] == {"id": "int64"}


def test_numpy_array_shows_its_shape_dtype_and_head(ui: UI) -> None:
    ui.push("array", np.arange(100, dtype=np.int32).reshape(10, 10))
    preview = ui.xcoms()["array"]["preview"]
    assert preview["kind"] == "array" and preview["type"] == "numpy.ndarray"
    assert preview["shape"] == [10, 10] and preview["dtypes"] == {"dtype": "int32"}
    assert preview["text"] == repr(list(range(20))) and preview["truncated"]


def test_large_preview_is_truncated_to_ui_preview_bytes_and_the_page_says_so(ui: UI) -> None:
    ui.configure(ui_preview_bytes="1000")
    ui.push("big", [f"item-{i}" for i in range(5000)])
    preview = ui.xcoms()["big"]["preview"]
    assert preview["truncated"]
    assert len(preview["text"].encode()) == 1000
    assert "Preview truncated to 1000 bytes" in ui.page()


def test_value_above_ui_max_decode_bytes_is_not_decoded_unless_forced(ui: UI) -> None:
    ui.configure(ui_max_decode_bytes="4096")
    ui.push("huge", "x" * 10_000)
    shown = ui.xcoms()["huge"]
    assert shown["state"] == "not_decoded" and shown["preview"] is None
    assert shown["size_bytes"] > 10_000
    assert "ui_max_decode_bytes = 4096" in shown["message"]
    assert "Decode anyway" in ui.page()
    forced = ui.xcoms(decode="force")["huge"]
    assert forced["state"] == "value" and forced["preview"]["text"].startswith('"xxxx')


def test_expired_value_shows_as_such(ui: UI, fake_redis: object) -> None:
    reference = ui.push("gone", 42)
    fake_redis.delete(reference.removeprefix("redis-xcom://"))  # type: ignore[attr-defined]
    shown = ui.xcoms()["gone"]
    assert shown["state"] == "expired" and shown["preview"] is None
    assert "gone from Redis" in shown["message"] and "ttl = 604800s" in shown["message"]
    assert "expired or evicted" in ui.page()


def test_a_row_that_is_not_a_reference_shows_airflows_own_value(ui: UI) -> None:
    ui.add_row("skipmixin_key", {"followed": ["branch_a"]})
    shown = ui.xcoms()["skipmixin_key"]
    assert shown["state"] == "inline" and shown["reference"] is None
    assert json.loads(shown["preview"]["text"]) == {"followed": ["branch_a"]}
    assert "stored in Airflow&#39;s database" in ui.page()


def test_classes_are_shown_as_serialized_and_never_imported_in_the_api_server(
    ui: UI, fake_redis: Any
) -> None:
    import sys

    from redis_xcom.codec.envelope import HEADER, HEADER_SIZE, seal

    ui.push("point", [datetime.timedelta(seconds=1), _Point(1, 2)])
    # A class named by bytes in Redis (same length, re-sealed): a reader rebuilding it would import it.
    module = "tests.ui.never_imported"
    planted = ui.push("planted", _Point(3, 4)).removeprefix("redis-xcom://")
    original = bytes(fake_redis.get(planted))
    payload = original[HEADER_SIZE:].replace(b"tests.ui.test_ui_api._Point", module.encode() + b"._P1")
    prefix = HEADER.unpack_from(original)[0]
    fake_redis.set(planted, b"".join(bytes(p) for p in seal([payload], prefix[3], 0, len(payload))))
    shown = ui.xcoms()
    point = shown["point"]
    assert point["state"] == "value", point
    assert point["type"] == "list" and "tests.ui.test_ui_api._Point" in point["preview"]["text"]
    assert shown["planted"]["state"] == "value", shown["planted"]
    assert shown["planted"]["type"] == f"{module}._P1 (serialized)"
    assert module not in sys.modules, "the API server imported a module named by bytes in Redis"
    download = ui.client.get(ui.url() + "/value", params={"key": "point"}, headers=ui.auth())
    assert download.status_code == 200
    assert download.json()[1] == {
        "__classname__": "tests.ui.test_ui_api._Point",
        "__version__": 0,
        "__data__": {"x": 1, "y": 2},
    }


def test_nothing_is_rendered_as_html(ui: UI) -> None:
    ui.push("<img src=x onerror=alert(1)>", {"<script>alert(1)</script>": "</pre><script>alert(2)</script>"})
    page = ui.page()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_map_index_placeholder_left_unfilled_means_minus_one(ui: UI) -> None:
    for given, expected in [("{MAP_INDEX}", -1), ("", -1), ("3", 3), ("-1", -1)]:
        ui.asked_map_index.clear()
        ui.xcoms(map_index=given)
        assert ui.asked_map_index == [expected], given
    ui.asked_map_index.clear()
    ui.xcoms()
    assert ui.asked_map_index == [-1]
    response = ui.client.get(ui.url(), params={"map_index": "two"}, headers=ui.auth())
    assert response.status_code == 400 and "map_index" in response.json()["detail"]


def test_download_gives_the_whole_value_as_json(ui: UI) -> None:
    ui.push("rich", {"when": datetime.date(2024, 1, 2), "amount": decimal.Decimal("1.10"), "pair": (1, 2)})
    ui.push("frame", pd.DataFrame({"a": [1, 2]}))
    url = ui.url() + "/value"
    response = ui.client.get(url, params={"key": "rich"}, headers=ui.auth())
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    assert response.json() == {"when": "2024-01-02", "amount": "1.10", "pair": [1, 2]}
    frame = ui.client.get(url, params={"key": "frame"}, headers=ui.auth())
    assert frame.json() == [{"a": 1}, {"a": 2}]
    assert "download" in ui.page() and "/value?key=rich" in ui.page()


def test_download_says_what_cannot_be_given(ui: UI, fake_redis: object) -> None:
    ui.push("nan", float("nan"))
    gone = ui.push("gone", 1)
    fake_redis.delete(gone.removeprefix("redis-xcom://"))  # type: ignore[attr-defined]
    url = ui.url() + "/value"
    nan = ui.client.get(url, params={"key": "nan"}, headers=ui.auth())
    assert nan.status_code == 406 and "cannot be written as JSON" in nan.json()["detail"]
    assert "key='nan'" in nan.json()["detail"]
    assert ui.client.get(url, params={"key": "gone"}, headers=ui.auth()).status_code == 404
    assert ui.client.get(url, params={"key": "nope"}, headers=ui.auth()).status_code == 404


# --- access -----------------------------------------------------------------------------------


def test_unauthenticated_request_gets_401(ui: UI) -> None:
    ui.push("k", 1)
    api = ui.client.get(ui.url())
    assert api.status_code == 401 and "Not authenticated" in api.json()["detail"]
    page = ui.client.get(ui.url(api=False))
    assert page.status_code == 401 and "text/html" in page.headers["content-type"]
    bad = ui.client.get(ui.url(), headers={"Authorization": "Bearer not-a-jwt"})
    assert bad.status_code == 401
    ui.client.cookies.set("_token", "not-a-jwt")
    try:
        assert ui.client.get(ui.url()).status_code == 401
    finally:
        ui.client.cookies.clear()


def test_the_uis_cookie_is_accepted_as_well_as_a_bearer_token(ui: UI) -> None:
    ui.push("k", {"v": 1})
    ui.client.cookies.set("_token", ui.token)
    try:
        page = ui.client.get(ui.url(api=False))
    finally:
        ui.client.cookies.clear()
    assert page.status_code == 200 and "&#34;v&#34;: 1" in page.text


def test_user_without_access_to_the_dag_gets_403(ui: UI) -> None:
    for api in (True, False):
        response = ui.client.get(ui.url(dag=DENIED_DAG, api=api), headers=ui.auth())
        assert response.status_code == 403, response.text
    value = ui.client.get(ui.url(dag=DENIED_DAG) + "/value", params={"key": "k"}, headers=ui.auth())
    assert value.status_code == 403
    assert ui.client.get(ui.url(dag=DAG), headers=ui.auth()).status_code == 200


def test_redis_unreachable_names_the_server_without_the_password(
    ui: UI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from redis_xcom.storage import client

    ui.add_row("k", f"redis-xcom://xcom:{{{DAG}/{RUN}}}:extract:-1:k")
    monkeypatch.setattr(client, "build_connection", real_build_connection)  # a real connection, not fakeredis
    ui.configure(url="redis://:s3cret@127.0.0.1:1/0", socket_connect_timeout="0.2", retry_attempts="0")
    shown = ui.xcoms()["k"]
    assert shown["state"] == "error" and "127.0.0.1:1" in shown["message"]
    assert "s3cret" not in json.dumps(shown) and "s3cret" not in ui.page()


@dataclasses.dataclass
class _Point:
    x: int
    y: int


def test_a_chunked_value_shows_its_whole_size_and_decodes(ui: UI) -> None:
    ui.configure(chunk_bytes="1024")
    ui.push("chunked", "y" * 5000)
    shown = ui.xcoms()["chunked"]
    assert shown["state"] == "value" and shown["size_bytes"] == len(Codec().encode("y" * 5000))
    assert shown["preview"]["text"] == '"' + "y" * 5000 + '"'


def test_large_values_are_read_in_batches_under_ui_max_decode_bytes(
    ui: UI, monkeypatch: pytest.MonkeyPatch
) -> None:
    ui.configure(ui_max_decode_bytes="30000")
    for i in range(5):
        ui.push(f"part{i}", "z" * 12_000)
    batches: list[int] = []
    real_get_many = RedisStore.get_many

    def counted(self: RedisStore, keys: list[str]) -> list[bytes | None]:
        batches.append(len(keys))
        return real_get_many(self, keys)

    monkeypatch.setattr(RedisStore, "get_many", counted)
    shown = ui.xcoms()
    assert all(x["state"] == "value" for x in shown.values()) and len(shown) == 5
    assert batches == [2, 2, 1]  # two values of about 12 KB per batch of at most 30000 bytes
