"""Decoding costs what the stored value's header and size allow, never what a crafted value claims.

Bytes in Redis can be written by anyone with access to it: a value records its decompressed length,
and readers refuse one above [redis_xcom] max_value_bytes before decompressing anything; arrays,
tables and sets that would materialize far more than their stored bytes are refused before they
are built. Writers apply the same rule, so nothing they store is refused on read.
"""

from __future__ import annotations

import tracemalloc

import pytest

from redis_xcom.codec import HEADER_SIZE, Codec, recorded_length
from redis_xcom.codec.envelope import HEADER
from redis_xcom.errors import CorruptPayloadError, DecodeLimitError, ValueTooLargeError
from tests.decode_child import SCIENCE, decode_in_child
from tests.xcom_calls import pull, push

MiB = 1 << 20


def _with_recorded_length(data: bytes, raw_len: int) -> bytes:
    """The same value with another decompressed length in its header (the checksum does not cover it)."""
    prefix, _raw, stored, digest = HEADER.unpack_from(data)
    return HEADER.pack(prefix, raw_len, stored, digest) + data[HEADER_SIZE:]


def test_a_compressed_value_recording_more_than_max_value_bytes_is_refused_before_decompressing() -> None:
    data = Codec("zlib", 0).encode("x" * (4 * MiB))
    assert len(data) < 64 * 1024 and recorded_length(data) is not None
    reader = Codec(max_decoded_bytes=MiB)
    tracemalloc.start()
    try:
        with pytest.raises(DecodeLimitError, match="max_value_bytes"):
            reader.decode(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MiB, f"{peak} bytes allocated to refuse it"
    assert Codec(max_decoded_bytes=8 * MiB).decode(data) == "x" * (4 * MiB)


def test_a_compressed_value_recording_length_zero_is_refused_without_decompressing() -> None:
    # zlib reads a limit of 0 as "no limit": the whole bomb would be inflated before any check.
    forged = _with_recorded_length(Codec("zlib", 0).encode("x" * (32 * MiB)), 0)
    tracemalloc.start()
    try:
        with pytest.raises(CorruptPayloadError, match="length of 0"):
            Codec().decode(forged)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MiB, f"{peak} bytes allocated to refuse it"


def test_a_push_that_would_be_unreadable_is_refused_by_its_decompressed_size(
    fake_redis: object, xcom_settings: pytest.MonkeyPatch
) -> None:
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__COMPRESSION", "zlib")
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__MAX_VALUE_BYTES", str(MiB))
    with pytest.raises(ValueTooLargeError, match=r"task_id='t'.*max_value_bytes") as refused:
        push("y" * (2 * MiB), dag_id="d", run_id="r", task_id="t")
    assert "2097" in str(refused.value), "the size named is the decompressed one"
    # Just under the limit, compressed: stored and read back.
    reference = push("y" * (MiB - 64), dag_id="d", run_id="r", task_id="t")
    assert pull(reference) == "y" * (MiB - 64)


def test_a_stored_value_above_a_lowered_max_value_bytes_fails_its_pull_naming_the_xcom(
    fake_redis: object, xcom_settings: pytest.MonkeyPatch
) -> None:
    from redis_xcom.runtime import reset_runtime

    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__COMPRESSION", "zlib")
    reference = push("z" * (2 * MiB), dag_id="d", run_id="r", task_id="big")
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__MAX_VALUE_BYTES", str(MiB))
    reset_runtime()
    with pytest.raises(DecodeLimitError, match=r"task_id='big'.*records 2097\d+ bytes once decompressed"):
        pull(reference)


def test_a_task_catches_the_refusal_with_the_package_own_error(
    fake_redis: object, xcom_settings: pytest.MonkeyPatch
) -> None:
    """As docs/guarantees.md tells users to: ``except redis_xcom.DecodeLimitError``."""
    import redis_xcom
    from redis_xcom.runtime import reset_runtime

    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__COMPRESSION", "zlib")
    reference = push("z" * (2 * MiB), dag_id="d", run_id="r", task_id="big")
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__MAX_VALUE_BYTES", str(MiB))
    reset_runtime()
    with pytest.raises(redis_xcom.DecodeLimitError):
        pull(reference)


def test_every_error_the_docs_list_is_exported_by_the_package() -> None:
    import re
    from pathlib import Path

    import redis_xcom
    from redis_xcom import errors

    table = (Path(__file__).parents[1] / "docs" / "guarantees.md").read_text()
    documented = set(re.findall(r"^\| `(\w+Error)` \|", table, re.MULTILINE)) - {"TypeError"}
    assert "DecodeLimitError" in documented
    for name in sorted(documented):
        assert name in redis_xcom.__all__, f"{name} is documented but not in redis_xcom.__all__"
        assert getattr(redis_xcom, name) is getattr(errors, name)


@pytest.mark.version_independent  # the codec alone: the same libraries in every lock
def test_numpy_arrays_claiming_elements_in_no_bytes_are_refused() -> None:
    np = pytest.importorskip("numpy")
    codec = Codec()
    # Zero-width items, and empty rows: tolist() would build 10**7 objects out of 0 stored bytes.
    for crafted in (np.zeros(10**7, dtype="V0"), np.zeros((10**7, 0))):
        data = codec.encode(crafted)
        assert len(data) < 200
        with pytest.raises(DecodeLimitError, match="numpy array of shape"):
            codec.decode(data)
    # Real arrays decode: one bool per byte, and one with a length-1 last axis.
    bools = np.ones(3 * 10**6, dtype=bool)
    assert np.array_equal(codec.decode(codec.encode(bools)), bools)
    grid = np.arange(12.0).reshape(3, 4, 1)
    assert np.array_equal(codec.decode(codec.encode(grid)), grid)


@pytest.mark.version_independent  # the codec alone: the same libraries in every lock
def test_arrow_tables_claiming_rows_in_no_bytes_are_refused() -> None:
    pa = pytest.importorskip("pyarrow")
    codec = Codec()
    crafted = pa.table({"n": pa.nulls(10**8)})
    data = codec.encode(crafted)
    assert len(data) < 2000
    with pytest.raises(DecodeLimitError, match="Arrow table of 100000000 rows"):
        codec.decode(data)
    # Nested: one row whose list holds 10**8 nulls.
    nested = pa.table({"l": pa.ListArray.from_arrays(pa.array([0, 10**8], pa.int32()), pa.nulls(10**8))})
    with pytest.raises(DecodeLimitError):
        codec.decode(codec.encode(nested))
    # A real table with a null column next to data, and a bool column of 4M rows, decode.
    mixed = pa.table({"id": pa.array(range(200_000)), "n": pa.nulls(200_000)})
    assert codec.decode(codec.encode(mixed)).equals(mixed)
    flags = pa.table({"b": pa.array([True, False] * 2_000_000)})
    assert codec.decode(codec.encode(flags)).equals(flags)


@pytest.mark.version_independent  # the codec alone: the same libraries in every lock
def test_pandas_frame_of_a_crafted_arrow_null_column_is_refused_before_to_pandas() -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"n": [None] * 10})
    data = Codec().encode(frame)
    # The same frame, with its Arrow stream replaced by one of 10**8 null rows, costs no more bytes.
    import pyarrow as pa

    big = Codec().encode(pa.table({"n": pa.nulls(10**8)}))
    assert len(big) < len(data) + 2000
    tracemalloc.start()
    try:
        with pytest.raises(DecodeLimitError):
            Codec().decode(big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * MiB


@pytest.mark.version_independent  # the codec alone: the same libraries in every lock
def test_a_set_of_items_sharing_one_hash_is_refused_and_real_sets_decode() -> None:
    codec = Codec()
    modulus = (1 << 61) - 1  # CPython hashes ints modulo this prime: all of these hash to 0
    flood = frozenset(k * modulus for k in range(1, 3000))
    data = codec.encode(flood)
    with pytest.raises(DecodeLimitError, match="share one hash value"):
        codec.decode(data)
    assert codec.decode(codec.encode(set(range(100_000)))) == set(range(100_000))
    words = frozenset(f"w{i}" for i in range(50_000))
    assert codec.decode(codec.encode(words)) == words


# Issue 29: decode shapes that passed the bounds above. Each probe decodes in a child process capped
# at 512 MB of address space (tests/decode_child.py): a regression fails there, not on the machine.


def _sealed(body: bytes, compression: str = "zlib") -> bytes:
    """A msgpack body in a valid envelope, as a writer with access to Redis could store it."""
    from redis_xcom.codec import compression as compression_module
    from redis_xcom.codec.envelope import FLAG_CHECKSUM, seal

    cid = compression_module.IDS[compression]
    stored = compression_module.compress(cid, [body]) if cid else body
    return b"".join(bytes(part) for part in seal([stored], FLAG_CHECKSUM, cid, len(body)))


def _out_of_band(body: bytes, region: bytes = b"r" * 1024, compression: str = "zlib") -> bytes:
    """A msgpack body on the out-of-band path (msgpack's decoder, not ormsgpack's), sealed."""
    import struct

    from redis_xcom.codec import compression as compression_module
    from redis_xcom.codec.envelope import FLAG_CHECKSUM, FLAG_OUT_OF_BAND, seal

    payload = struct.pack("<Q", len(body)) + body + region
    cid = compression_module.IDS[compression]
    stored = compression_module.compress(cid, [payload]) if cid else payload
    return b"".join(bytes(p) for p in seal([stored], FLAG_CHECKSUM | FLAG_OUT_OF_BAND, cid, len(payload)))


def _ext(code: int, inner: object) -> object:
    import msgpack

    from redis_xcom.codec.hooks import PACK_OPTIONS

    return msgpack.ExtType(code, msgpack.packb(inner, **PACK_OPTIONS))


def _packed(value: object) -> bytes:
    import msgpack

    from redis_xcom.codec.hooks import PACK_OPTIONS

    return msgpack.packb(value, **PACK_OPTIONS)


def _ipc(table: object) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:  # type: ignore[attr-defined]
        writer.write_table(table)
    return sink.getvalue().to_pybytes()  # type: ignore[no-any-return]


def _string_views(count: int, size: int = MiB, binary: bool = False) -> object:
    """count views of one string of size bytes: the data is stored once, materialized count times."""
    import struct

    import pyarrow as pa

    view = struct.pack("<i4sii", size, b"xxxx", 0, 0)  # length, prefix, buffer index, offset
    kind = pa.binary_view() if binary else pa.string_view()
    return pa.Array.from_buffers(kind, count, [None, pa.py_buffer(view * count), pa.py_buffer(b"x" * size)])


def _list_views(count: int, size: int = MiB) -> object:
    """count list views, each of the same size elements of one child."""
    import struct

    import pyarrow as pa

    child = pa.Array.from_buffers(pa.int8(), size, [None, pa.py_buffer(bytes(size))])
    offsets, sizes = pa.py_buffer(struct.pack("<i", 0) * count), pa.py_buffer(struct.pack("<i", size) * count)
    return pa.Array.from_buffers(pa.list_view(pa.int8()), count, [None, offsets, sizes], children=[child])


def _arrow_shapes() -> dict[str, object]:
    """Columns whose stored bytes are reused by many elements: each materializes about 1 GB."""
    import pyarrow as pa

    views = _string_views(1000)
    return {
        "string_view": views,
        "binary_view": _string_views(1000, binary=True),
        "list_view": _list_views(1000),
        "string_view_in_struct": pa.StructArray.from_arrays([views], names=["s"]),
        "string_view_in_list": pa.ListArray.from_arrays(pa.array([0, 1000], pa.int32()), views),
        "dictionary_in_list": pa.ListArray.from_arrays(
            pa.array([0, 1000], pa.int32()),
            pa.DictionaryArray.from_arrays(pa.array([0] * 1000, pa.int32()), pa.array(["x" * MiB])),
        ),
        "run_end_encoded": pa.RunEndEncodedArray.from_arrays(
            pa.array([1000], pa.int32()), pa.array(["x" * MiB])
        ),
    }


ARROW_SHAPES = ["string_view", "binary_view", "list_view", "string_view_in_struct", "string_view_in_list",
                "dictionary_in_list", "run_end_encoded"]  # fmt: skip


@pytest.mark.version_independent  # the codec alone: the same libraries in every lock
@pytest.mark.parametrize("shape", ARROW_SHAPES)
@pytest.mark.parametrize("kind", ["pandas", "arrow", "polars"])
def test_arrow_columns_count_what_they_materialize_not_what_they_store(shape: str, kind: str) -> None:
    pa = pytest.importorskip("pyarrow")
    pytest.importorskip("pandas" if kind == "pandas" else "polars" if kind == "polars" else "pyarrow")
    from redis_xcom.codec.extensions import Ext

    table = pa.table({"c": _arrow_shapes()[shape]})
    code = {"pandas": Ext.PANDAS_DATAFRAME, "arrow": Ext.ARROW_TABLE, "polars": Ext.POLARS_DATAFRAME}[kind]
    data = _sealed(_packed(_ext(code, _ipc(table))))
    assert len(data) < 40_000, "a few KB stored"
    # What a reader does next with the value: a pandas frame is already converted.
    then = {"pandas": "", "arrow": "value.to_pandas()", "polars": "value.to_pandas()"}[kind]
    outcome = decode_in_child(data, then=then, preload=SCIENCE)
    assert outcome.refused, outcome
    assert "materializ" in outcome.message and "stored bytes" in outcome.message, outcome.message
    assert outcome.rss_growth_mb < 200, outcome


@pytest.mark.version_independent  # the codec alone: the same libraries in every lock
def test_real_view_columns_and_frames_still_decode() -> None:
    pa = pytest.importorskip("pyarrow")
    pd = pytest.importorskip("pandas")
    words = [f"word-{i}" * (1 + i % 7) for i in range(50_000)]
    table = pa.table(
        {
            "s": pa.array(words, pa.string_view()),
            "b": pa.array([w.encode() for w in words], pa.binary_view()),
            "l": pa.array([[i, i + 1] for i in range(50_000)], pa.list_view(pa.int64())),
            "r": pa.RunEndEncodedArray.from_arrays(
                pa.array([25_000, 50_000], pa.int32()), pa.array(["a", "b"])
            ),
            "d": pa.array(words).dictionary_encode(),
        }
    )
    codec = Codec("zlib", 0)
    assert codec.decode(codec.encode(table)).equals(table)
    frame = pd.DataFrame({"s": pd.array(words, dtype=pd.ArrowDtype(pa.string_view())), "n": range(50_000)})
    assert codec.decode(codec.encode(frame)).equals(frame)
    # A categorical of long labels: pandas keeps it as categories, so the labels count once.
    labels = pd.Categorical([f"category {i % 10} " + "x" * 1000 for i in range(200_000)])
    categorical = pd.DataFrame({"c": labels})
    assert codec.decode(codec.encode(categorical)).equals(categorical)
    pl = pytest.importorskip("polars")
    polars_frame = pl.DataFrame({"s": words, "n": list(range(50_000))})
    assert codec.decode(codec.encode(polars_frame)).equals(polars_frame)


@pytest.mark.version_independent  # the codec alone: the same libraries in every lock
def test_compressed_arrow_ipc_is_refused_before_it_is_inflated() -> None:
    pa = pytest.importorskip("pyarrow")
    from redis_xcom.codec.extensions import Ext

    # One row of 256 MiB of zeros: a few KB once the IPC stream's own zstd compresses it.
    zeros = pa.py_buffer(bytes(256 * MiB))
    offsets = pa.py_buffer((0).to_bytes(8, "little") + (256 * MiB).to_bytes(8, "little"))
    table = pa.table({"z": pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, zeros])})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as writer:
        writer.write_table(table)
    del table, zeros
    data = _sealed(_packed(_ext(Ext.ARROW_TABLE, sink.getvalue().to_pybytes())), "none")
    assert len(data) < 64 * 1024
    outcome = decode_in_child(data, preload=SCIENCE)
    assert outcome.refused and "compress" in outcome.message, outcome
    assert outcome.rss_growth_mb < 100, outcome


def _empty_containers(shape: str) -> bytes:
    from redis_xcom.codec.extensions import Ext

    n = 10_000_000
    values = {
        "maps": lambda: _sealed(_packed([{}] * n)),
        "arrays": lambda: _sealed(_packed([[]] * n)),
        "nested": lambda: _sealed(_packed([[[{}]]] * (n // 3))),
        "sets": lambda: _sealed(_packed([_ext(Ext.SET, [])] * (n // 2))),
        "in_a_tuple": lambda: _sealed(_packed(_ext(Ext.TUPLE, [{}] * n))),
        # Out of band: the body follows the large buffers' path (msgpack, not ormsgpack).
        "out_of_band": lambda: _out_of_band(_packed([{}] * n)),
    }
    return values[shape]()


@pytest.mark.version_independent  # the codec alone: the same libraries in every lock
@pytest.mark.parametrize("shape", ["maps", "arrays", "nested", "sets", "in_a_tuple", "out_of_band"])
def test_empty_containers_cannot_outgrow_the_recorded_length(shape: str) -> None:
    data = _empty_containers(shape)
    assert len(data) < 100_000, "a few KB stored"
    outcome = decode_in_child(data)
    assert outcome.refused, outcome
    assert "objects" in outcome.message and "recorded" in outcome.message, outcome.message
    assert outcome.rss_growth_mb < 400, outcome


@pytest.mark.version_independent  # the codec alone: the same libraries in every lock
def test_values_made_of_many_small_containers_still_decode() -> None:
    codec = Codec("zlib", 0)
    records = [{"id": i, "name": f"user{i}", "ok": i % 2 == 0} for i in range(300_000)]
    for value in (
        [{}] * 1_000_000,  # within the free allowance
        [[i % 100, i % 7] for i in range(3_000_000)],  # pairs of small ints: 3 bytes each
        records,
        [(i, str(i)) for i in range(200_000)],
        "漢字かな交じり文" * 400_000,  # UTF-8 continuation bytes look like container markers
        {"blob": b"\x80\x90\xdc\xde" * 300_000, "rows": [[1.5, 2.5]] * 200_000},
    ):
        assert codec.decode(codec.encode(value)) == value


@pytest.mark.version_independent  # the codec alone: the same libraries in every lock
@pytest.mark.parametrize("key", ["bigint", "tuple", "uuid"])
def test_dict_keys_sharing_one_hash_are_refused_like_set_items(key: str) -> None:
    import uuid

    modulus = (1 << 61) - 1  # CPython hashes ints modulo this prime: all of these hash to 0
    make = {
        "bigint": lambda k: k * modulus,
        "tuple": lambda k: (k * modulus,),
        "uuid": lambda k: uuid.UUID(int=k * modulus),
    }[key]
    flood = {make(k): 0 for k in range(1, 3000)}
    # Small (the fast path), large (the general path), and on the out-of-band path.
    body = Codec().encode(flood)[HEADER_SIZE:]
    for data in (Codec().encode(flood), Codec().encode([flood, "x" * 70_000]), _out_of_band(body)):
        outcome = decode_in_child(data, timeout=60)
        assert outcome.refused, outcome
        assert "share one hash value" in outcome.message, outcome.message


@pytest.mark.version_independent  # the codec alone: the same libraries in every lock
def test_real_dicts_with_non_string_keys_still_decode() -> None:
    import uuid

    codec = Codec()
    for value in (
        {i: i for i in range(100_000)},
        {(i, str(i)): i for i in range(20_000)},
        {10**30 + i: i for i in range(5_000)},
        {uuid.UUID(int=i): i for i in range(5_000)},
        [{(i,): i for i in range(5_000)}, "x" * 70_000],
    ):
        assert codec.decode(codec.encode(value)) == value
    body = codec.encode({(i,): i for i in range(5_000)})[HEADER_SIZE:]
    assert codec.decode(_out_of_band(body)) == {(i,): i for i in range(5_000)}


@pytest.mark.version_independent  # the codec alone: the same libraries in every lock
def test_a_large_map_decoded_twice_spends_its_allowances_once() -> None:
    # A map of 1,024 keys or more stops msgpack's first pass; the second must not be charged for
    # what the first built (out-of-band references, the free element allowance).
    np = pytest.importorskip("numpy")
    codec = Codec()
    for value in (
        {"array": np.arange(100_000.0), "map": {i: i for i in range(5_000)}},
        {"array": np.arange(100_000.0), "map": {(i,): i for i in range(5_000)}},
        [np.zeros((3_000_000, 0)), {(i,): i for i in range(2_000)}],
    ):
        decoded = codec.decode(codec.encode(value))
        assert type(decoded) is type(value)


@pytest.mark.version_independent  # the codec alone: the same libraries in every lock
@pytest.mark.parametrize("dtype", ["<U0", "|V0", "|S0"])
def test_zero_itemsize_numpy_arrays_share_one_allowance_per_value(dtype: str) -> None:
    pytest.importorskip("numpy")
    from redis_xcom.codec.extensions import Ext

    array = _ext(Ext.NUMPY_ARRAY, [dtype, [1 << 20], "C", b""])
    data = _sealed(_packed([array] * 30))
    assert len(data) < 200, "30 arrays of 2**20 elements in a few dozen bytes"
    then = "json.dumps([a.tolist() for a in value], default=repr)"
    outcome = decode_in_child(data, then=then, preload=SCIENCE)
    assert outcome.refused and "numpy array of shape" in outcome.message, outcome


@pytest.mark.version_independent  # the codec alone: the same libraries in every lock
def test_small_zero_itemsize_numpy_arrays_still_decode() -> None:
    np = pytest.importorskip("numpy")
    codec = Codec()
    value = [np.zeros((1000, 0)), np.zeros(3, dtype="V0"), np.empty((2, 0), dtype="<U3"), np.arange(5)]
    decoded = codec.decode(codec.encode(value))
    assert [a.shape for a in decoded] == [a.shape for a in value]  # type: ignore[attr-defined]


@pytest.mark.version_independent  # the codec alone: the same libraries in every lock
def test_out_of_band_buffers_are_referenced_once() -> None:
    import struct

    import msgpack

    from redis_xcom.codec.envelope import FLAG_CHECKSUM, FLAG_OUT_OF_BAND, seal
    from redis_xcom.codec.extensions import BUF_BYTES, Ext

    # 1,000 references to one 1 MiB buffer: each would be copied into its own bytes object.
    ref = msgpack.ExtType(Ext.BUFFER_REF, struct.pack("<BQQ", BUF_BYTES, 0, MiB))
    body = _packed([ref] * 1000)
    parts = [struct.pack("<Q", len(body)), body, b"b" * MiB]
    data = b"".join(bytes(p) for p in seal(parts, FLAG_CHECKSUM | FLAG_OUT_OF_BAND, 0, sum(map(len, parts))))
    outcome = decode_in_child(data)
    assert outcome.refused and "out-of-band" in outcome.message, outcome


@pytest.mark.version_independent  # the codec alone: the same libraries in every lock
@pytest.mark.parametrize("kind", ["pandas", "arrow"])
def test_an_arrow_stream_of_no_batches_decodes_without_aborting_the_process(kind: str) -> None:
    pa = pytest.importorskip("pyarrow")
    pytest.importorskip("pandas")
    from redis_xcom.codec.extensions import Ext

    # Found by the fuzz target: a list view column of no chunks makes to_pandas() abort (SIGABRT).
    schema = pa.schema([("l", pa.list_view(pa.int8())), ("s", pa.struct([("v", pa.list_view(pa.int8()))]))])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema):
        pass  # the schema, and no record batch
    code = Ext.PANDAS_DATAFRAME if kind == "pandas" else Ext.ARROW_TABLE
    data = _sealed(_packed(_ext(code, sink.getvalue().to_pybytes())), "none")
    then = "assert len(value) == 0" if kind == "pandas" else "assert value.to_pandas().shape == (0, 2)"
    outcome = decode_in_child(data, then=then, preload=SCIENCE)
    assert outcome.outcome == "ok", outcome
