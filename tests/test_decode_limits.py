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
    from redis_xcom.backend import reset_runtime

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
    from redis_xcom.backend import reset_runtime

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
