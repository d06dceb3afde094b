"""numpy, pandas, pyarrow and polars values; each library is imported only when its value appears."""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Callable
from typing import Any

from redis_xcom.codec.budget import ELEMENTS_PER_BYTE, spend_elements
from redis_xcom.codec.extensions import BUF_VIEW, Ext, ExtensionDecoder, ExtensionEncoder
from redis_xcom.errors import CorruptPayloadError, UnsupportedFormatError

# Root modules whose values this file may handle; anything else never reaches it.
_ROOTS = frozenset({"numpy", "pandas", "pyarrow", "polars"})
_EXTRAS = {"numpy": "numpy", "pandas": "pandas", "pyarrow": "arrow", "polars": "polars"}


def handles(cls: type) -> bool:
    """Cheap test on the class's module name, so no scientific library is imported to answer it."""
    return cls.__module__.partition(".")[0] in _ROOTS


def encode(enc: ExtensionEncoder, obj: object) -> tuple[int, bytes] | None:
    """(code, payload) for a supported scientific value, None to let other encoders try."""
    root = type(obj).__module__.partition(".")[0]
    lib = sys.modules[root]  # already imported: the value exists
    if root == "numpy":
        if type(obj) is lib.ndarray:
            return Ext.NUMPY_ARRAY, _encode_ndarray(enc, lib, obj)
        if isinstance(obj, lib.generic):
            return Ext.NUMPY_SCALAR, _encode_numpy_scalar(enc, lib, obj)
    elif root == "pandas":
        if isinstance(obj, lib.DataFrame):
            return Ext.PANDAS_DATAFRAME, enc.pack(_arrow_ipc(enc, _pandas_to_arrow(obj)))
        if isinstance(obj, lib.Series):
            frame = obj.to_frame(name="_")
            return Ext.PANDAS_SERIES, enc.pack([obj.name, _arrow_ipc(enc, _pandas_to_arrow(frame))])
    elif root == "pyarrow":
        if isinstance(obj, lib.Table):
            return Ext.ARROW_TABLE, enc.pack(_arrow_ipc(enc, obj))
    elif root == "polars" and isinstance(obj, lib.DataFrame):
        return Ext.POLARS_DATAFRAME, enc.pack(_arrow_ipc(enc, obj.to_arrow()))
    return None


def _encode_ndarray(enc: ExtensionEncoder, np: Any, arr: Any) -> bytes:
    if arr.dtype.hasobject:
        raise TypeError(
            f"numpy array of dtype {arr.dtype} holds Python objects and cannot be stored safely; "
            "convert it to a numeric, string or datetime dtype"
        )
    order = "F" if arr.flags.f_contiguous and not arr.flags.c_contiguous else "C"
    if not (arr.flags.c_contiguous or arr.flags.f_contiguous):
        arr = np.ascontiguousarray(arr)  # a strided view: the one copy we cannot avoid
    flat = arr.reshape(-1, order=order).view(np.uint8)  # a view for contiguous arrays
    data = enc.buffer(memoryview(flat), BUF_VIEW)
    return enc.pack([np.lib.format.dtype_to_descr(arr.dtype), list(arr.shape), order, data])


def _encode_numpy_scalar(enc: ExtensionEncoder, np: Any, obj: Any) -> bytes:
    if obj.dtype.hasobject:
        raise TypeError(f"numpy scalar of dtype {obj.dtype} cannot be stored safely")
    return enc.pack([np.lib.format.dtype_to_descr(obj.dtype), obj.tobytes()])


def _pandas_to_arrow(frame: Any) -> Any:
    pa = _require("pyarrow", "pandas")
    try:
        # One thread: pyarrow's threaded column conversion has crashed the process (SIGSEGV) here.
        return pa.Table.from_pandas(frame, nthreads=1)
    except (pa.ArrowException, ValueError) as exc:
        raise TypeError(f"pandas value cannot be converted to Arrow: {exc}") from exc


def _arrow_ipc(enc: ExtensionEncoder, table: Any) -> object:
    pa = _require("pyarrow", "arrow")
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return enc.buffer(memoryview(sink.getvalue()), BUF_VIEW)


def _require(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UnsupportedFormatError(
            f"this value needs {module}, which is not installed: pip install 'redis-xcom[{extra}]'"
        ) from None


def _decode_ndarray(dec: ExtensionDecoder, data: bytes) -> Any:
    np = _require("numpy", "numpy")
    descr, shape, order, buf = dec.unpack(data)
    dtype = _dtype(np, descr)
    if order not in ("C", "F") or not all(type(n) is int and n >= 0 for n in shape):
        raise CorruptPayloadError("malformed numpy array header")
    count = math.prod(shape)
    if count * dtype.itemsize != len(buf):
        raise CorruptPayloadError("numpy array data does not match its shape and dtype")
    # tolist() builds a list per index of every axis but the last: those count as elements too.
    # Elements of a zero-width dtype (V0, U0, S0) or of an empty axis count though they store nothing.
    nested = sum(math.prod(shape[:axis]) for axis in range(1, len(shape)))
    # The extension's own bytes (dtype, shape) count as stored, and an out-of-band buffer's.
    stored = len(data) + (len(buf) if isinstance(buf, memoryview) else 0)
    if count + nested > ELEMENTS_PER_BYTE * stored:  # rare: only then is the allowance consulted
        what = f"a numpy array of shape {tuple(shape)} and dtype {dtype}"
        spend_elements(dec.budget, count + nested, stored, what)
    if count == 0 or dtype.itemsize == 0:
        return np.zeros(shape, dtype=dtype, order=order)
    # frombuffer views the stored bytes (read-only); the copy gives users a writable array.
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order).copy(order="K")


def _decode_numpy_scalar(dec: ExtensionDecoder, data: bytes) -> Any:
    np = _require("numpy", "numpy")
    descr, raw = dec.unpack(data)
    dtype = _dtype(np, descr)
    if not isinstance(raw, bytes) or len(raw) != dtype.itemsize:
        raise CorruptPayloadError("malformed numpy scalar")
    return np.frombuffer(raw, dtype=dtype)[0]


def _dtype(np: Any, descr: Any) -> Any:
    dtype = np.lib.format.descr_to_dtype(descr)
    if dtype.hasobject:
        raise CorruptPayloadError("refusing a numpy object dtype: it would read pointers from the value")
    return dtype


def _read_ipc(dec: ExtensionDecoder, buf: Any) -> Any:
    pa = _require("pyarrow", "arrow")
    import pyarrow.compute as pc

    from redis_xcom.codec.arrowcost import refuse_compressed_ipc, table_cost

    refuse_compressed_ipc(pa, buf)
    table = pa.ipc.open_stream(pa.py_buffer(buf)).read_all()
    # Reading maps the stored buffers. Their sizes are checked (validate), then what the table
    # materializes is counted from them (views, list views, run-end encoding and nested
    # dictionaries count each use), and only then is every value checked (full validation reads
    # every view) and converted.
    table.validate()
    cost = table_cost(pa, pc, table)
    spend_elements(dec.budget, cost, len(buf), f"an Arrow table of {table.num_rows} rows")
    table.validate(full=True)  # malformed offsets must fail here, not crash later
    if not table.num_rows:
        # A stream of no batches gives columns of no chunks, which to_pandas() aborts the process
        # on for list views (pyarrow 26): one empty chunk per column, the schema kept.
        table = table.schema.empty_table()
    return table


def _decode_dataframe(dec: ExtensionDecoder, data: bytes) -> Any:
    _require("pandas", "pandas")
    return _read_ipc(dec, dec.unpack(data)).to_pandas()


def _decode_series(dec: ExtensionDecoder, data: bytes) -> Any:
    _require("pandas", "pandas")
    name, buf = dec.unpack(data)
    return _read_ipc(dec, buf).to_pandas().iloc[:, 0].rename(name)


def _decode_polars(dec: ExtensionDecoder, data: bytes) -> Any:
    pl = _require("polars", "polars")
    return pl.from_arrow(_read_ipc(dec, dec.unpack(data)))


DECODERS: dict[int, Callable[[ExtensionDecoder, bytes], object]] = {
    Ext.NUMPY_ARRAY: _decode_ndarray,
    Ext.NUMPY_SCALAR: _decode_numpy_scalar,
    Ext.PANDAS_DATAFRAME: _decode_dataframe,
    Ext.PANDAS_SERIES: _decode_series,
    Ext.ARROW_TABLE: lambda dec, data: _read_ipc(dec, dec.unpack(data)),
    Ext.POLARS_DATAFRAME: _decode_polars,
}
