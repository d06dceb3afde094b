"""numpy, pandas, pyarrow and polars values: exact round trips, memory layout, and refusals."""

from __future__ import annotations

import tracemalloc

import pytest

from redis_xcom.codec import Codec

pytestmark = pytest.mark.version_independent

COMPRESSIONS = ["none", "zlib", "lz4", "zstd"]


def roundtrip(value: object, compression: str = "none") -> object:
    codec = Codec(compression, compression_threshold=1024)
    return codec.decode(codec.encode(value))


def _library_fixture(name: str, module: str, extra: str):  # type: ignore[no-untyped-def]
    """A module-scoped fixture yielding the library, or skipping with what to install."""
    reason = f"{module} not installed: pip install 'redis-xcom[{extra}]'"
    return pytest.fixture(scope="module", name=name)(lambda: pytest.importorskip(module, reason=reason))


np_fixture = _library_fixture("np", "numpy", "numpy")
pd_fixture = _library_fixture("pd", "pandas", "pandas")
pa_fixture = _library_fixture("pa", "pyarrow", "arrow")
pl_fixture = _library_fixture("pl", "polars", "polars")


def _arrays(np):  # type: ignore[no-untyped-def]
    return {
        "float64": np.arange(12.0).reshape(3, 4),
        "fortran": np.asfortranarray(np.arange(24, dtype=np.int16).reshape(2, 3, 4)),
        "strided": np.arange(20)[::3],
        "big_endian": np.arange(5, dtype=">u4"),
        "bool": np.array([True, False]),
        "complex": np.array([1 + 2j]),
        "unicode": np.array(["a", "bcd"]),
        "datetime64": np.array(["2024-01-01T12:00", "NaT"], dtype="datetime64[m]"),
        "structured": np.array([(1, 2.5, b"x")], dtype=[("a", "<i4"), ("b", "<f8"), ("c", "S2")]),
        "zero_d": np.array(7.5),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "large": np.random.default_rng(0).random((300, 300)),
    }


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_numpy_arrays_keep_dtype_shape_order_and_values(np, compression: str) -> None:  # type: ignore[no-untyped-def]
    for name, array in _arrays(np).items():
        got = roundtrip({"a": array}, compression)["a"]  # type: ignore[index]
        assert type(got) is np.ndarray, name
        assert got.dtype == array.dtype, name
        assert got.shape == array.shape, name
        np.testing.assert_array_equal(got, array, err_msg=name)
        assert got.flags.writeable, name


def test_fortran_order_is_kept(np) -> None:  # type: ignore[no-untyped-def]
    array = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    got = roundtrip(array)
    assert got.flags.f_contiguous and not got.flags.c_contiguous  # type: ignore[attr-defined]


def test_decoded_large_array_is_writable_and_independent(np) -> None:  # type: ignore[no-untyped-def]
    array = np.ones(100_000)
    codec = Codec()
    data = codec.encode(array)
    got = codec.decode(data)
    got[0] = 5.0  # type: ignore[index]
    assert codec.decode(data)[0] == 1.0  # type: ignore[index]


def test_numpy_scalars_keep_their_type(np) -> None:  # type: ignore[no-untyped-def]
    for scalar in [
        np.float64(1.5),
        np.float32(2.5),
        np.int8(-3),
        np.uint64(2**64 - 1),
        np.bool_(True),
        np.str_("s"),
        np.datetime64("2024-01-01"),
        np.timedelta64(5, "s"),
        np.complex64(1j),
    ]:
        got = roundtrip([scalar])[0]  # type: ignore[index]
        assert type(got) is type(scalar)
        assert got == scalar


def test_object_arrays_are_refused_with_a_path(np) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError, match=r"type 'ndarray' at value\['x'\]: .*object"):
        Codec().encode({"x": np.array([{"a": 1}], dtype=object)})


def test_large_array_costs_one_copy_each_way(np) -> None:  # type: ignore[no-untyped-def]
    array = np.random.default_rng(1).random(2 << 20)  # 16 MiB
    codec = Codec()
    tracemalloc.start()
    data = codec.encode(array)
    _, encode_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    got = codec.decode(data)
    _, decode_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert encode_peak < array.nbytes * 1.1
    assert decode_peak - len(data) < array.nbytes * 1.1
    np.testing.assert_array_equal(got, array)


def test_large_bytes_cost_one_copy_each_way() -> None:
    blob = bytes(range(256)) * (64 << 10)  # 16 MiB
    codec = Codec()
    tracemalloc.start()
    data = codec.encode(blob)
    _, encode_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    got = codec.decode(data)
    _, decode_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert encode_peak < len(blob) * 1.1
    assert decode_peak - len(data) < len(blob) * 1.1
    assert got == blob


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_pandas_dataframe_round_trips(pd, pa, compression: str) -> None:  # type: ignore[no-untyped-def]
    frame = pd.DataFrame(
        {
            "i": [1, 2, 3],
            "f": [0.5, None, 2.5],
            "s": ["x", None, "z"],
            "when": pd.date_range("2024-01-01", periods=3, tz="Europe/Paris"),
            "cat": pd.Categorical(["a", "b", "a"]),
            "nullable": pd.array([1, None, 3], dtype="Int64"),
        },
        index=pd.Index([10, 20, 30], name="row"),
    )
    got = roundtrip({"df": frame}, compression)["df"]  # type: ignore[index]
    pd.testing.assert_frame_equal(got, frame)


def test_pandas_series_keeps_name_index_and_dtype(pd, pa) -> None:  # type: ignore[no-untyped-def]
    series = pd.Series([1.5, 2.5], index=pd.Index(["a", "b"], name="k"), name=("metric", 1))
    pd.testing.assert_series_equal(roundtrip(series), series)
    unnamed = pd.Series([1, 2], dtype="int32")
    pd.testing.assert_series_equal(roundtrip(unnamed), unnamed)


def test_pandas_frame_arrow_cannot_hold_is_a_type_error(pd, pa) -> None:  # type: ignore[no-untyped-def]
    frame = pd.DataFrame({"mixed": [object(), 1]})
    with pytest.raises(TypeError, match=r"type 'DataFrame' at value\[0\]"):
        Codec().encode([frame])


def test_pyarrow_table_round_trips(pa) -> None:  # type: ignore[no-untyped-def]
    table = pa.table({"a": [1, 2, None], "b": ["x", "y", "z"], "l": [[1], [], [2, 3]]})
    got = roundtrip(table)
    assert type(got) is pa.Table
    assert got.equals(table)
    assert got.schema == table.schema


def test_polars_dataframe_round_trips(pl, pa) -> None:  # type: ignore[no-untyped-def]
    frame = pl.DataFrame({"a": [1, 2, None], "b": ["x", "y", "z"], "c": [1.5, 2.5, 3.5]})
    got = roundtrip({"f": frame}, "zstd")["f"]  # type: ignore[index]
    assert type(got) is pl.DataFrame
    assert got.equals(frame)
    assert got.schema == frame.schema


def test_large_dataframe_round_trips_out_of_band(pd, pa, np) -> None:  # type: ignore[no-untyped-def]
    frame = pd.DataFrame({"x": np.arange(200_000), "y": np.random.default_rng(2).random(200_000)})
    data = Codec().encode(frame)
    assert data[3] & 0x02  # the Arrow stream travels after the msgpack body
    pd.testing.assert_frame_equal(Codec().decode(data), frame)
