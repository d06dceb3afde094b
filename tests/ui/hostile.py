"""Stored values that cost far more to show than they take in Redis: what a DAG author (or anyone who
can write to the Redis) can plant. Each is built as the bytes Redis would hold, without ever
materializing the value here, and passes the codec's checks as they stood when the UI sandbox came.

    string_view_frame   a pandas DataFrame: an Arrow string_view column whose 1M rows all view one
                        1,000-character string (a few KB stored, over 1 GB once converted)
    string_view_table   the same column as an Arrow Table: cheap to decode and preview, over 1 GB as JSON
    empty_maps          30M empty msgpack maps in about 29 KB of zlib: 2 GB of dicts
    colliding_keys      60K big-int dict keys sharing one hash: quadratic to build (minutes of CPU)
    u0_arrays           30 numpy arrays of dtype <U0 and 1M elements in 573 bytes: 189 MB of JSON
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from typing import Any

import msgpack

from redis_xcom.codec import Codec
from redis_xcom.codec.envelope import FLAG_CHECKSUM, FLAG_OUT_OF_BAND, open_envelope, seal
from redis_xcom.codec.extensions import Ext

ROWS, WIDTH = 1_000_000, 1000
_ZLIB = 1  # the envelope's compression id of zlib


def _sealed(payload: bytes, flags: int) -> bytes:
    """A checksummed envelope of payload, zlib-compressed (the stored bytes are what is small)."""
    packed = zlib.compress(payload, 9)
    return b"".join(bytes(part) for part in seal([packed], flags | FLAG_CHECKSUM, _ZLIB, len(payload)))


def _string_view_ipc_table() -> Any:
    import numpy as np
    import pyarrow as pa

    text = b"s" * WIDTH
    views = np.zeros((ROWS, 4), dtype="<i4")  # length, 4-byte prefix, buffer index, offset
    views[:, 0] = WIDTH
    views[:, 1] = struct.unpack("<i", text[:4])[0]
    column = pa.Array.from_buffers(
        pa.string_view(), ROWS, [None, pa.py_buffer(views.tobytes()), pa.py_buffer(text)]
    )
    return pa.table({"s": column})


def string_view_table() -> bytes:
    return _recompressed(Codec().encode(_string_view_ipc_table()))


def string_view_frame() -> bytes:
    """The table's bytes retagged as a pandas DataFrame (which the codec reads with to_pandas()):
    without pandas' own schema metadata the column converts to 1M Python strings."""
    return _recompressed(
        Codec().encode(_string_view_ipc_table()), retag={Ext.ARROW_TABLE: Ext.PANDAS_DATAFRAME}
    )


def _recompressed(data: bytes, retag: dict[int, int] | None = None) -> bytes:
    """An uncompressed out-of-band value, its top-level extension codes changed, zlib-compressed."""
    flags, _cid, _raw, body = open_envelope(data, require_checksum=True)
    assert flags & FLAG_OUT_OF_BAND, "the IPC stream is large enough to be stored out of band"
    payload = bytes(body)
    (length,) = struct.unpack_from("<Q", payload)
    top = payload[8 : 8 + length]
    if retag:
        value = msgpack.unpackb(top, ext_hook=lambda code, raw: msgpack.ExtType(retag.get(code, code), raw))
        top = msgpack.packb(value, use_bin_type=True)
    return _sealed(struct.pack("<Q", len(top)) + top + payload[8 + length :], FLAG_OUT_OF_BAND)


def empty_maps(count: int = 30_000_000) -> bytes:
    body = b"\xdd" + struct.pack(">I", count) + b"\x80" * count  # array 32 of fixmap 0
    return _sealed(body, 0)


def colliding_keys(count: int = 60_000) -> bytes:
    """A dict keyed by big ints that all hash to 0 (CPython hashes ints modulo 2**61 - 1), written as
    the codec writes big ints; built as msgpack directly, since building the dict is quadratic too."""
    modulus = (1 << 61) - 1
    keys = (
        (k * modulus).to_bytes((k * modulus).bit_length() // 8 + 1, "little", signed=True)
        for k in range(1, count)
    )
    body = msgpack.packb({msgpack.ExtType(Ext.BIGINT, key): 0 for key in keys}, use_bin_type=True)
    return _sealed(body, 0)


def u0_arrays(count: int = 30, size: int = 1_000_000) -> bytes:
    array = msgpack.ExtType(Ext.NUMPY_ARRAY, msgpack.packb(["<U0", [size], "C", b""], use_bin_type=True))
    body = msgpack.packb([array] * count, use_bin_type=True)
    return b"".join(bytes(part) for part in seal([body], FLAG_CHECKSUM, 0, len(body)))


# Name -> builder; the server test pushes a placeholder under each name and plants these bytes.
HOSTILE: dict[str, Callable[[], bytes]] = {
    "string_view_frame": string_view_frame,
    "string_view_table": string_view_table,
    "empty_maps": empty_maps,
    "colliding_keys": colliding_keys,
    "u0_arrays": u0_arrays,
}
