"""The hooks msgpack calls for non-plain values: one encoder and one decoder per extension code.

Plain data never reaches this module: msgpack packs it in C, and only calls ``Encoder`` (its
``default``) or ``Decoder`` (its ``ext_hook``) for what it cannot represent itself.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable
from typing import Any

import msgpack

from redis_xcom.codec import science, stdtypes
from redis_xcom.codec.budget import (
    GUARDED_MAP_LEN,
    GUARDED_MIN_BYTES,
    SET_COST,
    DecodeBudget,
    HashWatch,
)
from redis_xcom.codec.extensions import BUF_BYTEARRAY, BUF_BYTES, BUF_VIEW, MAX_DEPTH, OUT_OF_BAND_MIN, Ext
from redis_xcom.errors import CorruptPayloadError, UnsupportedFormatError

# What an extension value costs the budget: a set may hold its items in one more container.
EXT_COSTS: dict[int, int] = {Ext.SET: SET_COST, Ext.FROZENSET: SET_COST}
# Extension values whose hash is not randomized (ints' arithmetic, and what is built from ints):
# only these can be crafted to share one hash. Strings, bytes, dates and paths hash randomly.
WATCHED_CODES = frozenset({Ext.BIGINT, Ext.TUPLE, Ext.FROZENSET, Ext.DECIMAL, Ext.UUID, Ext.AIRFLOW_SERDE})

PACK_OPTIONS: dict[str, Any] = {"use_bin_type": True, "strict_types": True}

_BUFFER = struct.Struct("<BQQ")  # kind, offset, length inside the out-of-band region


class NeedsOutOfBand(Exception):
    """Raised by the stateless encoder on a large buffer: encode again with a buffer list."""


class OutOfBand:
    """Large buffers collected while encoding one value; they follow the msgpack body."""

    def __init__(self) -> None:
        self.parts: list[memoryview] = []
        self.size = 0

    def add(self, buf: memoryview, kind: int) -> msgpack.ExtType:
        self.parts.append(buf)
        ref = msgpack.ExtType(Ext.BUFFER_REF, _BUFFER.pack(kind, self.size, buf.nbytes))
        self.size += buf.nbytes
        return ref


class Encoder:
    """msgpack ``default`` hook: turns one non-plain object into an ExtType."""

    def __init__(self, oob: OutOfBand | None = None, depth: int = 0) -> None:
        self.oob = oob
        self.depth = depth
        self._child: Encoder | None = None

    def __call__(self, obj: object) -> object:
        encode = stdtypes.ENCODERS.get(type(obj))
        if encode is not None:
            return encode(self, obj)
        return self._encode_other(obj)

    def pack(self, obj: object) -> bytes:
        """Pack a nested value (the inside of an extension) one level deeper."""
        if self.depth >= MAX_DEPTH:
            raise TypeError(f"rich values are nested more than {MAX_DEPTH} levels deep")
        if self._child is None:
            self._child = Encoder(self.oob, self.depth + 1)
        return msgpack.packb(obj, default=self._child, **PACK_OPTIONS)

    def buffer(self, buf: memoryview, kind: int) -> object:
        """Reference a raw byte buffer: inline when small, out of band (no re-packing) when large."""
        if buf.nbytes < OUT_OF_BAND_MIN:
            return msgpack.ExtType(Ext.BYTEARRAY, buf.tobytes()) if kind == BUF_BYTEARRAY else buf.tobytes()
        if self.oob is None:
            raise NeedsOutOfBand
        return self.oob.add(buf, kind)

    def _encode_other(self, obj: object) -> object:
        cls = type(obj)
        if science.handles(cls):
            encoded = science.encode(self, obj)
            if encoded is not None:
                return msgpack.ExtType(*encoded)
        for base, encode in stdtypes.SUBCLASS_ENCODERS:
            if isinstance(obj, base):
                return encode(self, obj)
        return stdtypes.encode_by_airflow(self, obj)

    def run_user_code(self, func: Callable[[Any], Any], obj: object) -> Any:
        """func(obj) with a fresh packer for this thread: user code may call Codec.encode mid-value."""
        busy = LOCAL.packer
        LOCAL.packer = new_packer()
        try:
            return func(obj)
        finally:
            LOCAL.packer = busy


class Decoder:
    """msgpack ``ext_hook``: rebuilds one value from an extension code and its payload.

    The general path gives each decode its own, with the decode's budget; the small values' fast
    path shares TOP_DECODER, whose budget is None.
    """

    def __init__(
        self,
        region: memoryview | None = None,
        depth: int = 0,
        budget: DecodeBudget | None = None,
        watch: HashWatch | None = None,
    ) -> None:
        self.region = region
        self.depth = depth
        self.budget = budget
        self.watch = watch
        # Read once per extension value: whether the budget counts objects one by one...
        self.counting = budget is not None and budget.counting
        # ...and whether anything is checked around it at all.
        self.checked = self.counting or watch is not None
        self._child: Decoder | None = None

    def __call__(self, code: int, data: bytes) -> object:
        decode = _DECODERS.get(code)
        if decode is None:
            raise UnsupportedFormatError(f"value uses unknown extension type {code}; upgrade redis-xcom")
        if not self.checked:
            return decode(self, data)
        if self.counting:
            self.budget.spend_object(EXT_COSTS.get(code, 1))  # type: ignore[union-attr]  # a set, a datetime...
        value = decode(self, data)
        if code in WATCHED_CODES and self.watch is not None:
            self.watch.see(value)  # it may be a map's key
        return value

    def unpack(self, data: bytes | memoryview) -> Any:
        """Unpack the inside of an extension one level deeper."""
        if self.depth >= MAX_DEPTH:
            raise CorruptPayloadError(f"rich values nested more than {MAX_DEPTH} levels deep")
        child = self._child
        if child is None:
            child = self._child = Decoder(self.region, self.depth + 1, self.budget, self.watch)
        if not child.counting and (child.watch is not None or len(data) < GUARDED_MIN_BYTES):
            # Watched already, or too short to hold a map the hash check applies to (the common
            # case: a tuple, a set): no first pass with the map check.
            return msgpack.unpackb(data, ext_hook=child, strict_map_key=False)
        return unpack_msgpack(data, child)

    def buffer(self, data: bytes) -> object:
        """Resolve an out-of-band reference: bytes/bytearray are copied once, views are not."""
        kind, offset, length = _BUFFER.unpack(data)
        if self.region is None or offset + length > len(self.region):
            raise CorruptPayloadError("buffer reference points outside the stored value")
        if self.budget is not None:
            self.budget.spend_region(length)
        view = self.region[offset : offset + length]
        if kind == BUF_BYTES:
            return bytes(view)
        if kind == BUF_BYTEARRAY:
            return bytearray(view)
        if kind == BUF_VIEW:
            return view
        raise CorruptPayloadError(f"unknown buffer kind {kind}")


TOP_ENCODER = Encoder()
TOP_DECODER = Decoder()


def unpack_msgpack(data: Any, decoder: Decoder) -> Any:
    """msgpack's decoder with redis-xcom's bounds: maps whose keys share one hash are refused, and
    while the decode's budget counts, every map, array and extension value is counted."""
    if decoder.counting:
        budget: DecodeBudget = decoder.budget  # type: ignore[assignment]
        return msgpack.unpackb(
            data,
            ext_hook=decoder,
            strict_map_key=False,
            list_hook=budget.count_list,
            object_pairs_hook=budget.count_map,
        )
    if decoder.watch is not None:
        # Extension values are watched for shared hashes (see HashWatch): every map is built in C.
        return msgpack.unpackb(data, ext_hook=decoder, strict_map_key=False)
    spent = decoder.budget
    state = None if spent is None else spent.snapshot()
    try:
        # Maps are built in C; a large one, whose keys a flood could make share one hash, stops
        # this pass...
        return msgpack.unpackb(data, ext_hook=decoder, strict_map_key=False, max_map_len=GUARDED_MAP_LEN)
    except ValueError as exc:
        if "max_map_len" not in str(exc):
            raise
    # ...and the second, from the start, watches the extension values the keys are made of.
    if spent is not None and state is not None:
        spent.restore(state)  # what the first pass spent is built again
    watcher = Decoder(decoder.region, decoder.depth, spent, HashWatch())
    return msgpack.unpackb(data, ext_hook=watcher, strict_map_key=False)


def new_packer() -> msgpack.Packer:
    """The packer for top-level values: plain data in C, everything else through TOP_ENCODER."""
    return msgpack.Packer(default=TOP_ENCODER, **PACK_OPTIONS)


class _ThreadPacker(threading.local):
    """One reusable Packer per thread (a Packer is not thread-safe, and creating one costs)."""

    def __init__(self) -> None:
        self.packer = new_packer()


LOCAL = _ThreadPacker()


# Every extension code this package reads, from the three places that define them.
_DECODERS: dict[int, Callable[[Any, bytes], object]] = {
    **stdtypes.DECODERS,
    Ext.BUFFER_REF: Decoder.buffer,
    **science.DECODERS,
}
