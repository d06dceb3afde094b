"""Round trips, type fidelity, allow-list refusal, error messages and the envelope of the codec."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import gc
import math
import pathlib
import struct
import subprocess
import sys
import uuid
import zoneinfo
from collections import OrderedDict, namedtuple
from collections.abc import Iterator

import attrs
import msgpack
import pendulum
import pydantic
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from redis_xcom.airflow_compat import airflow_serde
from redis_xcom.codec import HEADER_SIZE, MAGIC, OVERHEAD, Codec
from redis_xcom.errors import (
    ConfigError,
    CorruptPayloadError,
    DisallowedClassError,
    RedisXComError,
    UnsupportedFormatError,
)
from tests.airflow_limits import PYDANTIC_REASON, serde_takes_pydantic

ALLOW_ENV = "AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES"
COMPRESSIONS = ["none", "zlib", "lz4", "zstd"]


@dataclasses.dataclass
class Point:
    x: int
    label: str


@attrs.define
class Box:
    width: float
    tags: list


class Model(pydantic.BaseModel):
    name: str
    size: int


class Custom:
    """A class that brings its own serde hooks, as Airflow documents."""

    __version__ = 1

    def __init__(self, payload: dict) -> None:
        self.payload = payload

    def __eq__(self, other: object) -> bool:
        return type(other) is Custom and other.payload == self.payload

    def serialize(self) -> dict:
        return self.payload

    @staticmethod
    def deserialize(data: dict, version: int) -> Custom:
        return Custom(data)


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Opaque:
    pass


Pair = namedtuple("Pair", "a b")


def roundtrip(value: object, codec: Codec | None = None) -> object:
    codec = codec or Codec()
    return codec.decode(codec.encode(value))


def assert_same(got: object, expected: object) -> None:
    """Equal and of the same type, all the way down (NaN equals NaN here)."""
    assert type(got) is type(expected), (got, expected)
    if isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(got)  # type: ignore[arg-type]
    elif isinstance(expected, decimal.Decimal):
        assert str(got) == str(expected)  # exact digits, exponent and NaN kind
    elif isinstance(expected, dict):
        assert list(got) == list(expected)  # type: ignore[call-overload]
        for key in expected:
            assert_same(key, next(k for k in got if k == key))  # type: ignore[attr-defined]
            assert_same(got[key], expected[key])  # type: ignore[index]
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected)  # type: ignore[arg-type]
        for g, e in zip(got, expected, strict=True):  # type: ignore[call-overload]
            assert_same(g, e)
    else:
        assert got == expected
        if isinstance(expected, (dt.datetime, dt.time)):
            assert got.tzinfo == expected.tzinfo  # type: ignore[union-attr]
            assert type(got.tzinfo) is type(expected.tzinfo)  # type: ignore[union-attr]
            assert got.fold == expected.fold  # type: ignore[union-attr]


@pytest.fixture
def allow_test_classes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Like Airflow's conf_vars: allow this module's classes, and clear serde's cached patterns."""
    serde = airflow_serde()

    monkeypatch.setenv(ALLOW_ENV, "airflow.* tests.test_codec.*")
    _clear_serde_caches(serde)
    yield
    monkeypatch.undo()
    _clear_serde_caches(serde)


def _clear_serde_caches(serde: object) -> None:
    for name in ("_get_patterns", "_get_regexp_patterns", "_match_glob", "_match_regexp"):
        getattr(serde, name).cache_clear()


PLAIN = [
    None,
    True,
    False,
    0,
    -1,
    2**63 - 1,
    -(2**63),
    2**64 - 1,
    1.5,
    -0.0,
    "",
    "héllo ✓",
    b"",
    b"\x00\xff",
    [],
    {},
    {"a": [1, {"b": None}], "c": "d"},
]

RICH = [
    2**64,
    -(2**63) - 1,
    10**40,
    float("nan"),
    float("inf"),
    float("-inf"),
    (),
    (1, (2, (3,)), [4]),
    {1, 2, 3},
    frozenset({"a"}),
    set(),
    {1: "int key", (1, 2): "tuple key", None: "none", 2.5: "float", b"k": "bytes", frozenset({1}): 1},
    bytearray(b"abc"),
    decimal.Decimal("0.1"),
    decimal.Decimal("-1.2300E+40"),
    decimal.Decimal("NaN"),
    decimal.Decimal("123456789012345678901234567890.123456789"),
    dt.datetime(2024, 2, 29, 23, 59, 59, 999999),
    dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
    dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-2), "BRT")),
    dt.datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=zoneinfo.ZoneInfo("America/New_York")),
    pendulum.datetime(2024, 3, 10, 12, tz="Europe/Amsterdam"),
    pendulum.datetime(2024, 3, 10, 12, tz="UTC"),
    pendulum.datetime(2024, 3, 10, 12, tz=pendulum.FixedTimezone(3600)),
    pendulum.date(2024, 5, 17),
    dt.date(1, 1, 1),
    dt.time(23, 59, 59, 1),
    dt.time(8, 0, tzinfo=dt.timezone.utc),
    dt.timedelta(days=-1, seconds=5, microseconds=7),
    dt.timedelta(days=999999999),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    dt.timezone.utc,
    dt.timezone(dt.timedelta(minutes=-90)),
    zoneinfo.ZoneInfo("Asia/Kolkata"),
    pendulum.timezone("Europe/Paris"),
    pathlib.Path("/tmp/data.csv"),
    pathlib.PurePosixPath("a/b"),
    pathlib.PureWindowsPath(r"C:\data\x.csv"),
    {"nested": [(1, {2, 3}), {"when": dt.datetime(2020, 1, 1)}, [decimal.Decimal("1.5")]]},
]


@pytest.mark.parametrize("value", PLAIN + RICH, ids=repr)
def test_round_trip_keeps_value_and_type(value: object) -> None:
    assert_same(roundtrip(value), value)


@pytest.mark.parametrize("value", [b"x" * 100, b"y" * 200_000, bytearray(b"z" * 200_000)], ids=len)
def test_bytes_round_trip_at_top_level_and_nested(value: bytes | bytearray) -> None:
    assert_same(roundtrip(value), value)
    assert roundtrip({"blob": value}) == {"blob": value}


def test_memoryview_comes_back_as_bytes() -> None:
    assert_same(roundtrip(memoryview(b"view")), b"view")
    assert_same(roundtrip(memoryview(bytes(100_000))), bytes(100_000))


def test_non_contiguous_memoryview_is_stored_as_its_bytes() -> None:
    view = memoryview(b"abcdef")[::2]
    assert roundtrip(view) == b"ace"


def test_nested_bytearray_comes_back_as_bytes_a_known_msgpack_limit() -> None:
    # msgpack packs bytearray as bin before any hook runs; only a top-level bytearray keeps its type.
    assert_same(roundtrip([bytearray(b"ab")]), [b"ab"])


def test_enums_follow_airflow_serde() -> None:
    assert_same(roundtrip(Level.HIGH), 3)
    with pytest.raises(TypeError, match="Color"):
        Codec().encode({"c": Color.RED})


def test_namedtuple_and_dict_subclasses_keep_content_like_airflow() -> None:
    assert_same(roundtrip(Pair(1, 2)), (1, 2))
    assert_same(roundtrip(OrderedDict(a=1)), {"a": 1})


@pytest.mark.parametrize(
    "value",
    [Point(1, "a"), Box(2.5, ["x"]), Model(name="m", size=3), Custom({"k": [1, 2]})],
    ids=lambda v: type(v).__name__,
)
def test_airflow_serde_classes_round_trip_when_allowed(value: object, allow_test_classes: None) -> None:
    if isinstance(value, pydantic.BaseModel) and not serde_takes_pydantic():
        # PYDANTIC_REASON: the codec hands on the serde's refusal, saying where the model was.
        with pytest.raises(TypeError, match=r"type 'Model' at value\['wrapped'\]\[0\]: cannot serialize"):
            Codec().encode({"wrapped": [value]})
        return
    got = roundtrip({"wrapped": [value]})
    assert type(got["wrapped"][0]) is type(value)  # type: ignore[index]
    assert got == {"wrapped": [value]}


@pytest.mark.parametrize(
    "value", [Point(1, "a"), Box(2.5, ["x"]), Model(name="m", size=3)], ids=lambda v: type(v).__name__
)
def test_class_outside_allow_list_is_refused_on_read(value: object, monkeypatch: pytest.MonkeyPatch) -> None:
    if isinstance(value, pydantic.BaseModel) and not serde_takes_pydantic():
        pytest.skip(f"nothing to refuse on read: {PYDANTIC_REASON}")
    serde = airflow_serde()

    monkeypatch.setenv(ALLOW_ENV, "airflow.*")
    _clear_serde_caches(serde)
    data = Codec().encode([value])
    with pytest.raises(DisallowedClassError) as info:
        Codec().decode(data)
    message = str(info.value)
    assert f"tests.test_codec.{type(value).__name__}" in message
    assert "allowed_deserialization_classes" in message
    _clear_serde_caches(serde)


def test_regexp_allow_list_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    serde = airflow_serde()

    monkeypatch.setenv(ALLOW_ENV, "airflow.*")
    monkeypatch.setenv("AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES_REGEXP", r"tests\.test_codec\.Point")
    _clear_serde_caches(serde)
    assert roundtrip(Point(3, "r")) == Point(3, "r")
    with pytest.raises(DisallowedClassError):
        roundtrip(Box(1.0, []))
    monkeypatch.undo()
    _clear_serde_caches(serde)


def test_unserializable_value_names_type_and_path() -> None:
    value = {"rows": [{"id": 1}, {"id": 2}, {"id": 3}, Opaque()]}
    with pytest.raises(TypeError, match=r"type 'Opaque' at value\['rows'\]\[3\]: "):
        Codec().encode(value)


def test_unserializable_nested_in_tuple_set_and_key_is_located() -> None:
    with pytest.raises(TypeError, match=r"type 'Opaque' at value\['t'\]\[1\]\[0\]"):
        Codec().encode({"t": (1, (Opaque(),))})
    with pytest.raises(TypeError, match=r"type 'Opaque' at value\[0\] key"):
        Codec().encode([{Opaque(): 1}])
    with pytest.raises(TypeError, match=r"type 'Opaque' at value$|type 'Opaque' at value:"):
        Codec().encode(Opaque())


def test_encoder_is_usable_after_a_failure() -> None:
    codec = Codec()
    with pytest.raises(TypeError):
        codec.encode([1, 2, Opaque()])
    assert codec.decode(codec.encode([1, 2, 3])) == [1, 2, 3]


def test_too_deep_plain_nesting_is_a_type_error() -> None:
    value: list = []
    for _ in range(2000):
        value = [value]
    with pytest.raises(TypeError, match="at value"):
        Codec().encode(value)


def test_too_deep_rich_nesting_is_a_type_error_not_a_crash() -> None:
    value: tuple = ()
    for _ in range(500):
        value = (value,)
    with pytest.raises(TypeError, match="nested"):
        Codec().encode(value)


def test_moderately_nested_tuples_round_trip() -> None:
    value: tuple = (1,)
    for _ in range(50):
        value = (value, "x")
    assert_same(roundtrip(value), value)


def test_unportable_timezone_is_refused_with_path() -> None:
    class Local(dt.tzinfo):
        def utcoffset(self, d: object) -> dt.timedelta:
            return dt.timedelta(hours=1)

    with pytest.raises(TypeError, match=r"at value\['when'\]"):
        Codec().encode({"when": dt.datetime(2024, 1, 1, tzinfo=Local())})


# ---- compression and envelope ----------------------------------------------------------------


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_every_compression_round_trips_and_shrinks_large_values(compression: str) -> None:
    codec = Codec(compression, compression_threshold=1024)
    value = {"rows": [{"id": i, "name": "same text " * 3} for i in range(2000)]}
    data = codec.encode(value)
    assert codec.decode(data) == value
    if compression != "none":
        assert data[4] != 0
        assert len(data) < len(Codec().encode(value)) / 3


@pytest.mark.parametrize("writer", COMPRESSIONS)
@pytest.mark.parametrize("reader", COMPRESSIONS)
def test_any_reader_reads_values_written_under_any_setting(writer: str, reader: str) -> None:
    value = {"blob": bytes(300_000), "text": "x" * 100_000, "when": dt.date(2024, 1, 1)}
    data = Codec(writer, compression_threshold=10).encode(value)
    assert Codec(reader, compression_threshold=10**9).decode(data) == value


def test_values_below_threshold_are_not_compressed() -> None:
    codec = Codec("zlib", compression_threshold=10_000)
    small = codec.encode("a" * 5_000)
    large = codec.encode("a" * 20_000)
    assert small[4] == 0
    assert large[4] == 1
    assert len(large) < 1_000


def test_incompressible_values_are_kept_raw() -> None:
    import os

    blob = os.urandom(100_000)
    data = Codec("zstd", compression_threshold=10).encode(blob)
    assert data[4] == 0
    assert Codec().decode(data) == blob


def test_unknown_compression_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="gzip"):
        Codec("gzip")


@pytest.mark.parametrize("threshold", [-1, 1.5, "64k"])
def test_bad_threshold_is_a_config_error(threshold: object) -> None:
    with pytest.raises(ConfigError, match="compression_threshold"):
        Codec("zlib", threshold)  # type: ignore[arg-type]


@pytest.mark.parametrize("module, extra", [("lz4", "lz4"), ("zstandard", "zstd")])
def test_missing_compression_library_says_what_to_install(
    module: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(sys.modules):
        if name == module or name.startswith(module + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "path", [])
    monkeypatch.setitem(sys.modules, module, None)  # makes the import fail
    with pytest.raises(ConfigError, match=rf"pip install 'redis-xcom\[{extra}\]'"):
        Codec("lz4" if extra == "lz4" else "zstd")


def test_envelope_layout_is_the_documented_one() -> None:
    data = Codec().encode({"a": 1})
    fields = struct.unpack_from("<2sBBBBQQQ", data)
    magic, version, flags, cid, reserved, raw_len, stored_len, digest = fields
    assert (magic, version, flags, cid, reserved) == (MAGIC, 1, 1, 0, 0)
    assert HEADER_SIZE == OVERHEAD == 30
    assert raw_len == stored_len == len(data) - HEADER_SIZE
    assert data[HEADER_SIZE:] == msgpack.packb({"a": 1})
    assert digest == xxhash.xxh3_64_intdigest(data[HEADER_SIZE:], seed=int.from_bytes(data[:6], "little"))


def test_values_without_checksum_read_only_where_checksums_are_off() -> None:
    # Only the benchmarks write values without a checksum; the backend's codec refuses them.
    data = Codec(checksum=False).encode([1, 2])
    assert data[3] == 0
    assert Codec(checksum=False).decode(data) == [1, 2]
    with pytest.raises(CorruptPayloadError, match="no checksum"):
        Codec().decode(data)


SAMPLES = {
    "plain": {"a": [1, 2, 3], "b": "text"},
    "rich": {
        "t": (1, 2),
        "d": decimal.Decimal("1.5"),
        "when": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    },
    "out_of_band": {"blob": b"q" * 100_000, "rest": [1, 2]},
}


def _encodings() -> Iterator[tuple[str, bytes]]:
    for name, value in SAMPLES.items():
        for compression in COMPRESSIONS:
            yield f"{name}-{compression}", Codec(compression, compression_threshold=16).encode(value)


ENCODINGS = dict(_encodings())


@pytest.mark.parametrize("name", ENCODINGS)
def test_every_truncation_is_detected(name: str) -> None:
    data = ENCODINGS[name]
    step = max(1, len(data) // 300)
    for cut in range(0, len(data), step):
        with pytest.raises(CorruptPayloadError):
            Codec().decode(data[:cut])


@pytest.mark.parametrize("name", ENCODINGS)
def test_every_single_bit_flip_is_detected(name: str) -> None:
    data = ENCODINGS[name]
    step = max(1, len(data) * 8 // 2000)
    for bit in range(0, len(data) * 8, step):
        altered = bytearray(data)
        altered[bit // 8] ^= 1 << (bit % 8)
        byte, mask = bit // 8, 1 << (bit % 8)
        # Version, reserved byte and undefined flag bits say "newer format"; all else is corruption.
        newer = byte in (2, 5) or (byte == 3 and mask > 0x02)
        expected = UnsupportedFormatError if newer else CorruptPayloadError
        with pytest.raises(expected):
            Codec().decode(bytes(altered))


def test_unknown_version_is_a_clear_unsupported_format_error() -> None:
    data = bytearray(Codec().encode("x"))
    data[2] = 7
    with pytest.raises(UnsupportedFormatError, match="version 7"):
        Codec().decode(bytes(data))


def test_unknown_compression_id_is_unsupported() -> None:
    data = bytearray(Codec().encode("x"))
    data[4] = 9
    seed = int.from_bytes(data[:6], "little")
    data[22:30] = struct.pack("<Q", xxhash.xxh3_64_intdigest(bytes(data[30:]), seed=seed))
    with pytest.raises(UnsupportedFormatError, match="compression"):
        Codec().decode(bytes(data))


@pytest.mark.parametrize("payload", [b"", b"RX", b"{}", b'"json string"', b"\x00" * 40])
def test_foreign_bytes_are_corrupt(payload: bytes) -> None:
    with pytest.raises(CorruptPayloadError):
        Codec().decode(payload)


def test_decode_accepts_bytearray_and_memoryview() -> None:
    data = Codec().encode({"k": (1, 2)})
    assert Codec().decode(bytearray(data)) == {"k": (1, 2)}
    assert Codec().decode(memoryview(data)) == {"k": (1, 2)}


def test_importing_codec_loads_no_scientific_library() -> None:
    code = (
        "import sys, redis_xcom.codec as c; c.Codec('zstd').decode(c.Codec().encode({'a': (1,)})); "
        "print(sorted(m for m in ('numpy','pandas','pyarrow','polars') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_codec_is_safe_to_share_between_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    codec = Codec()
    values = [{"i": i, "t": (i, str(i)), "blob": b"x" * (i * 1000)} for i in range(200)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda v: codec.decode(codec.encode(v)), values))
    assert results == values


# ---- property-based round trips ----------------------------------------------------------------

plain_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
)
plain_values = st.recursive(
    plain_leaves,
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=40,
)

hashable_rich = (
    st.integers()
    | st.text()
    | st.decimals(allow_nan=False)
    | st.datetimes(timezones=st.none() | st.timezones())
    | st.dates()
    | st.times()
    | st.timedeltas()
    | st.uuids()
    | st.binary()
)
rich_values = st.recursive(
    hashable_rich | st.floats() | plain_leaves,
    lambda children: (
        st.lists(children)
        | st.lists(children).map(tuple)
        | st.frozensets(hashable_rich)
        | st.sets(hashable_rich)
        | st.dictionaries(hashable_rich, children)
    ),
    max_leaves=30,
)


@given(plain_values)
@settings(max_examples=300)
def test_plain_values_round_trip(value: object) -> None:
    assert_same(roundtrip(value), value)


@given(rich_values, st.sampled_from(COMPRESSIONS))
@settings(max_examples=300)
def test_rich_values_round_trip(value: object, compression: str) -> None:
    codec = Codec(compression, compression_threshold=64)
    got = codec.decode(codec.encode(value))
    assert_same_rich(got, value)


def assert_same_rich(got: object, expected: object) -> None:
    if isinstance(expected, (set, frozenset)):
        assert type(got) is type(expected)
        assert got == expected
        return
    if isinstance(expected, dict):
        assert type(got) is dict and len(got) == len(expected)
        for key, item in expected.items():
            assert_same_rich(got[key], item)  # type: ignore[index]
        return
    if isinstance(expected, (list, tuple)):
        assert type(got) is type(expected) and len(got) == len(expected)  # type: ignore[arg-type]
        for g, e in zip(got, expected, strict=True):  # type: ignore[call-overload]
            assert_same_rich(g, e)
        return
    assert_same(got, expected)


def test_every_error_is_a_redis_xcom_error() -> None:
    assert issubclass(CorruptPayloadError, RedisXComError)
    assert issubclass(UnsupportedFormatError, RedisXComError)
    assert issubclass(DisallowedClassError, RedisXComError)


class Reentrant:
    """serialize() itself uses the codec, as a user's class might (e.g. to cache a payload)."""

    def __init__(self, inner: list) -> None:
        self.inner = inner

    def __eq__(self, other: object) -> bool:
        return type(other) is Reentrant and other.inner == self.inner

    def serialize(self) -> dict:
        codec = Codec()
        return {"inner": codec.decode(codec.encode(self.inner))}

    @staticmethod
    def deserialize(data: dict, version: int) -> Reentrant:
        return Reentrant(data["inner"])


def test_codec_used_inside_a_serialize_method_does_not_corrupt_the_outer_value(
    allow_test_classes: None,
) -> None:
    value = {"before": "x" * 50, "obj": Reentrant([1, 2, 3]), "after": [9, 9]}
    assert roundtrip(value) == value


def _records(n: int) -> list[dict[str, object]]:
    return [{"id": i, "name": f"row-{i}", "tags": [i % 3, i % 5]} for i in range(n)]


def _reseal(body: bytes) -> bytes:
    """An envelope around body with correct lengths and checksum (damage the checksum can't see)."""
    prefix = struct.pack("<2sBBBB", MAGIC, 1, 1, 0, 0)
    digest = xxhash.xxh3_64_intdigest(body, seed=int.from_bytes(prefix, "little"))
    return struct.pack("<6sQQQ", prefix, len(body), len(body), digest) + body


def test_large_decode_sets_off_no_garbage_collection_and_leaves_the_collector_on() -> None:
    # Every dict the decoder builds counts towards the collector's thresholds: without the pause,
    # 200k records set off dozens of collections that find nothing.
    codec = Codec()
    data = codec.encode(_records(200_000))
    collections: list[str] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(phase)

    gc.callbacks.append(count)
    try:
        assert gc.isenabled()
        value = codec.decode(data)
        during = len(collections)
    finally:
        gc.callbacks.remove(count)
    assert value == _records(200_000)
    assert during == 0
    assert gc.isenabled()


def test_collector_state_is_restored_after_a_failed_large_decode() -> None:
    body = Codec().encode(_records(100_000))[HEADER_SIZE:]
    damaged = _reseal(body[:-7])  # checksum fine, msgpack body cut short
    assert len(damaged) > 1 << 20
    with pytest.raises(CorruptPayloadError):
        Codec().decode(damaged)
    assert gc.isenabled()
    gc.disable()  # a caller that turned the collector off keeps it off
    try:
        assert Codec().decode(_reseal(body)) == _records(100_000)
        assert not gc.isenabled()
    finally:
        gc.enable()
