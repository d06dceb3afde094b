"""Hybrid mode ([redis_xcom] inline_max_bytes): small plain values stay in the DB row as Airflow's
default backend stores them; everything else, and every value the default cannot keep exactly, goes
to Redis. Against fakeredis (the ops commands against a real redis-server)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator, Sequence
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import fakeredis
import pytest

from redis_xcom import ExclusiveRedisXCom, inline, keys, metrics
from redis_xcom.config import get_settings
from redis_xcom.errors import ConfigError
from tests.key_helpers import build_key
from tests.redis_process import RedisServer
from tests.test_backend import FakeSupervisor
from tests.xcom34 import XCom34
from tests.xcom_calls import own_coordinates, pull, push, redis_key, value_keys

LIMIT = 64


@pytest.fixture
def hybrid(fake_redis: fakeredis.FakeRedis, xcom_settings: pytest.MonkeyPatch) -> fakeredis.FakeRedis:
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__INLINE_MAX_BYTES", str(LIMIT))
    return fake_redis


def is_reference(stored: Any) -> bool:
    return keys.key_of_reference(stored) is not None


def text_of_json_length(length: int) -> str:
    """A string whose JSON text ("...") is exactly length bytes."""
    return "x" * (length - 2)


# --- the threshold ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "inline_expected"), [(LIMIT - 1, True), (LIMIT, True), (LIMIT + 1, False)]
)
def test_values_at_and_below_the_threshold_stay_inline_above_go_to_redis(
    hybrid: fakeredis.FakeRedis, length: int, inline_expected: bool
) -> None:
    for key, value in (
        ("text", text_of_json_length(length)),
        ("dict", {"path": "s3://b/" + "k" * (length - 19)}),
    ):
        assert len(json.dumps(value)) == length
        stored = push(value, key=key)
        assert (stored == value) is inline_expected and is_reference(stored) is not inline_expected
        assert pull(stored) == value
    assert len(value_keys(hybrid)) == (0 if inline_expected else 2)


def test_an_inline_row_is_what_airflows_default_backend_stores(hybrid: fakeredis.FakeRedis) -> None:
    from airflow.sdk.bases.xcom import BaseXCom

    value = {"rows": 3, "ok": True, "ratio": 0.5, "tags": ["a", None]}
    stored = push(value)
    assert stored == BaseXCom.serialize_value(value) == value
    assert BaseXCom.deserialize_value(SimpleNamespace(value=stored)) == value


def test_non_ascii_text_counts_as_json_escapes_it(hybrid: fakeredis.FakeRedis) -> None:
    # 20 characters, but "\\u65e5" x 20 + quotes = 122 bytes of JSON text: above 64.
    wide = "日" * 20
    assert is_reference(push(wide)) and pull(push(wide)) == wide
    narrow = "日" * 10  # 62 bytes
    assert push(narrow) == narrow


def test_default_zero_sends_everything_to_redis(fake_redis: fakeredis.FakeRedis) -> None:
    assert get_settings().inline_max_bytes == 0
    for value in (None, 1, "ok", [], {}):
        assert is_reference(push(value))


def test_a_negative_threshold_is_refused_with_the_option_named(xcom_settings: pytest.MonkeyPatch) -> None:
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__INLINE_MAX_BYTES", "-1")
    with pytest.raises(ConfigError, match=r"inline_max_bytes must be 0 .* got -1"):
        get_settings()


# --- fidelity --------------------------------------------------------------------------------


EXACT_ONLY_IN_REDIS = {
    "tuple": (1, 2),
    "nested tuple": {"pair": (1, 2)},
    "bytes": b"\x00\x01",
    "decimal": Decimal("0.1000000000000000000001"),
    "datetime": dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone.utc),
    "date": dt.date(2024, 1, 1),
    "set": {1, 2},
    "non-str keys": {1: "a", 2: "b"},
    "int past 64 bits": 2**64,
    "float with exponent": 1e16,
    "negative zero": -0.0,
    "nan": float("nan"),
    "serde's reserved key": {"__classname__": "builtins.tuple", "__version__": 1, "__data__": [1]},
    "NUL character": "a\x00b",
    "a reference's look": "redis-xcom://xcom:{d/r}:t:-1:k",
}


@pytest.mark.parametrize("name", list(EXACT_ONLY_IN_REDIS))
def test_a_small_value_the_default_cannot_keep_exactly_goes_to_redis(
    hybrid: fakeredis.FakeRedis, name: str
) -> None:
    value = EXACT_ONLY_IN_REDIS[name]
    stored = push(value)
    assert is_reference(stored), f"{name} stayed inline: {stored!r}"
    pulled = pull(stored)
    if name == "nan":
        assert pulled != pulled
    else:
        assert pulled == value and type(pulled) is type(value)
        if name == "negative zero":
            assert str(pulled) == "-0.0"


def test_a_huge_value_is_never_encoded_to_find_it_is_large(monkeypatch: pytest.MonkeyPatch) -> None:
    escaped: list[int] = []
    real = inline.encode_basestring_ascii
    monkeypatch.setattr(inline, "encode_basestring_ascii", lambda s: escaped.append(len(s)) or real(s))
    for huge in (
        "x" * 20_000_000,
        list(range(5_000_000)),
        {"rows": [{"é": "ü" * (i % 10)} for i in range(500_000)]},
    ):
        assert not inline.kept_inline(huge, LIMIT)
    # Only a few strings short enough to fit what was left of the threshold were looked at.
    assert len(escaped) < 20 and max(escaped) < LIMIT


def test_the_size_walk_counts_what_json_dumps_writes() -> None:
    values = [
        None, True, False, 0, -7, 2**63 - 1, 0.1, 1234.5, "", 'q"t', "t\tab", "\x7f", "é", "😀",
        [], {}, [1, [2, [3, []]]], {"a": 1, "b": [None, {"c": "d"}]}, {"é": ["ü", 1.5]},
    ]  # fmt: skip
    for value in values:
        length = len(json.dumps(value))
        assert inline.kept_inline(value, length), value
        assert not inline.kept_inline(value, length - 1), value


def test_deep_or_cyclic_values_go_to_redis_without_recursing() -> None:
    deep: list[Any] = []
    level = deep
    for _ in range(inline.MAX_DEPTH + 1):
        level.append([])
        level = level[0]
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    assert not inline.kept_inline(deep, 1 << 20)
    assert not inline.kept_inline(cyclic, 1 << 20)


# --- Airflow 3.4's store_value ---------------------------------------------------------------


def test_store_value_keeps_small_values_inline_and_loads_them(hybrid: fakeredis.FakeRedis) -> None:
    coordinate = SimpleNamespace(dag_id="etl", run_id="r1", task_id="t", ti_id=uuid.uuid4(), region_index=-1)
    small, large = {"n": 1}, {"n": "x" * LIMIT}
    stored_small = XCom34.store_value(coordinate, "return_value", small)
    stored_large = XCom34.store_value(coordinate, "other", large)
    assert stored_small == small and is_reference(stored_large)
    assert ExclusiveRedisXCom.load_value(stored_small) == small
    assert ExclusiveRedisXCom._load_many([stored_small, stored_large]) == [small, large]


# --- pulls of many ----------------------------------------------------------------------------


def test_a_mapped_pull_mixes_inline_and_redis_values_in_one_round_trip(
    hybrid: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.execution_time import task_runner

    from redis_xcom.runtime import get_runtime as runtime

    values = [{"i": i, "pad": "x" * (0 if i % 2 else LIMIT)} for i in range(10)]
    stored = [push(value, task_id="mapped", map_index=i) for i, value in enumerate(values)]
    assert [is_reference(s) for s in stored] == [i % 2 == 0 for i in range(10)]
    store, client = runtime().store, runtime().store.client
    batches: list[list[str]] = []
    single: list[Any] = []
    get_many = store.get_many
    monkeypatch.setattr(store, "get_many", lambda ks: batches.append(list(ks)) or get_many(ks))
    command = client.execute_command
    monkeypatch.setattr(client, "execute_command", lambda *a, **kw: single.append(a[0]) or command(*a, **kw))
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", FakeSupervisor(stored), raising=False)
    pulled = ExclusiveRedisXCom.get_all(key="return_value", dag_id="etl", task_id="mapped", run_id="r1")
    assert pulled == values
    assert [len(b) for b in batches] == [5] and single == []
    # All inline: Redis is not asked at all.
    batches.clear()
    assert ExclusiveRedisXCom.deserialize_many([s for s in stored if not is_reference(s)]) == values[1::2]
    assert batches == [] and single == []


# --- metrics ----------------------------------------------------------------------------------


class RecordingStats:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def incr(self, name: str, count: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + count

    def timing(self, name: str, delta: Any) -> None:
        pass


def test_inline_pushes_are_counted_apart_from_redis_pushes(
    hybrid: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    stats = RecordingStats()
    monkeypatch.setattr(metrics, "_stats", lambda: stats)
    push("small")
    push({"n": 2}, key="other")
    push("x" * LIMIT, key="large")
    push({"followed": ["a"]}, key="skipmixin_key")  # a branch decision: inline, but not by the threshold
    assert stats.counts.get(metrics.PUSHES_INLINE) == 2
    assert stats.counts.get(metrics.PUSHES) == 1


# --- clear, gc, stats, the UI -----------------------------------------------------------------


@pytest.fixture
def hybrid_server(
    fresh_redis_server: RedisServer, xcom_settings: pytest.MonkeyPatch
) -> Iterator[RedisServer]:
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__URL", fresh_redis_server.url)
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__INLINE_MAX_BYTES", str(LIMIT))
    yield fresh_redis_server


def mixed_run() -> tuple[list[Any], list[str]]:
    """Rows of one run: three inline, two references; returns (inline rows, Redis keys)."""
    rows = [push(i, task_id=f"small{i}") for i in range(3)]
    refs = [push("x" * LIMIT, task_id=f"large{i}") for i in range(2)]
    assert not any(map(is_reference, rows)) and all(map(is_reference, refs))
    return rows, [redis_key(r) for r in refs]


@pytest.mark.integration
def test_clear_gc_and_stats_see_only_redis_values(
    hybrid_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from redis_xcom.ops import cli
    from redis_xcom.ops.gc import run_gc
    from redis_xcom.ops.output import Output

    inline_rows, redis_keys = mixed_run()
    assert cli.main(["stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["values"] == 2

    class Table:  # the xcom table: the inline rows and the references
        def referenced(self, coords: Sequence[keys.XComCoordinates], prefix: str) -> set[str]:
            return {k for c in coords if (k := build_key(prefix, c)) in redis_keys}

        def references(self) -> Iterator[list[tuple[keys.RowCoordinates, object]]]:
            yield [(own_coordinates(keys.to_reference(k)), keys.to_reference(k)) for k in redis_keys]

    assert run_gc(grace=0, dry_run=False, yes=True, force=False, out=Output(True), table=Table()) == 0
    gc = json.loads(capsys.readouterr().out)
    assert (gc["examined"], gc["referenced"], gc["deleted"], gc["rows_without_value_by_dag"]) == (2, 2, 0, {})
    assert value_keys(hybrid_server.client()) == set(redis_keys), "gc deleted a referenced value"
    assert ExclusiveRedisXCom.clear(dag_id="etl", run_id="r1") == 2
    assert value_keys(hybrid_server.client()) == set()
    # The inline rows still load: they never had anything in Redis.
    assert [pull(row) for row in inline_rows] == [0, 1, 2]


def test_the_ui_shows_an_inline_row_as_its_value(hybrid: fakeredis.FakeRedis) -> None:
    from redis_xcom.ui import values

    values.reset_reader()
    try:
        small = push({"rows": 3})
        large = push("x" * LIMIT, key="large")
        rows = [
            values.XComRow("etl", "r1", "t", -1, "return_value", small),
            values.XComRow("etl", "r1", "t", -1, "large", large),
        ]
        shown = values.reader().views(rows)
    finally:
        values.reset_reader()
    assert (shown[0].state, shown[0].reference, shown[0].redis_key) == (values.INLINE, None, None)
    assert shown[0].preview is not None and "rows" in json.dumps(shown[0].preview.as_json())
    assert shown[1].state == values.VALUE and shown[1].redis_key == redis_key(large)
