"""The hooks msgpack calls for non-plain values: one encoder and one decoder per extension code.

Plain data never reaches this module: msgpack packs it in C, and only calls ``Encoder`` (its
``default``) or ``Decoder`` (its ``ext_hook``) for what it cannot represent itself.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import pathlib
import struct
import threading
import uuid
from collections.abc import Callable
from typing import Any

import msgpack

from redis_xcom import _codec_science as science
from redis_xcom._codec_ext import BUF_BYTEARRAY, BUF_BYTES, BUF_VIEW, MAX_DEPTH, OUT_OF_BAND_MIN, Ext
from redis_xcom.airflow_compat import airflow_serde
from redis_xcom.errors import CorruptPayloadError, DisallowedClassError, UnsupportedFormatError

PACK_OPTIONS: dict[str, Any] = {"use_bin_type": True, "strict_types": True}

_DATE = struct.Struct("<HBB")
_TIME = struct.Struct("<BBBIB")  # hour, minute, second, microsecond, fold
_DATETIME = struct.Struct("<HBBBBBIB")
_TIMEDELTA = struct.Struct("<iii")
_BUFFER = struct.Struct("<BQQ")  # kind, offset, length inside the out-of-band region
_PATHS: dict[str, type[pathlib.PurePath]] = {
    cls.__name__: cls
    for cls in (
        pathlib.Path,
        pathlib.PosixPath,
        pathlib.WindowsPath,
        pathlib.PurePath,
        pathlib.PurePosixPath,
        pathlib.PureWindowsPath,
    )
}
_PATHS_BY_TYPE = {cls: name for name, cls in _PATHS.items()}
_TZ_UTC, _TZ_FIXED, _TZ_ZONEINFO, _TZ_PENDULUM, _TZ_PENDULUM_FIXED = range(5)


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
        encode = _ENCODERS.get(type(obj))
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
        for base, encode in _SUBCLASS_ENCODERS:
            if isinstance(obj, base):
                return encode(self, obj)
        return _encode_by_airflow(self, obj)


class Decoder:
    """msgpack ``ext_hook``: rebuilds one value from an extension code and its payload."""

    def __init__(self, region: memoryview | None = None, depth: int = 0) -> None:
        self.region = region
        self.depth = depth
        self._child: Decoder | None = None

    def __call__(self, code: int, data: bytes) -> object:
        decode = _DECODERS.get(code)
        if decode is None:
            raise UnsupportedFormatError(f"value uses unknown extension type {code}; upgrade redis-xcom")
        return decode(self, data)

    def unpack(self, data: bytes | memoryview) -> Any:
        """Unpack the inside of an extension one level deeper."""
        if self.depth >= MAX_DEPTH:
            raise CorruptPayloadError(f"rich values nested more than {MAX_DEPTH} levels deep")
        if self._child is None:
            self._child = Decoder(self.region, self.depth + 1)
        return msgpack.unpackb(data, ext_hook=self._child, strict_map_key=False)

    def buffer(self, data: bytes) -> object:
        """Resolve an out-of-band reference: bytes/bytearray are copied once, views are not."""
        kind, offset, length = _BUFFER.unpack(data)
        if self.region is None or offset + length > len(self.region):
            raise CorruptPayloadError("buffer reference points outside the stored value")
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


def new_packer() -> msgpack.Packer:
    """The packer for top-level values: plain data in C, everything else through TOP_ENCODER."""
    return msgpack.Packer(default=TOP_ENCODER, **PACK_OPTIONS)


class _ThreadPacker(threading.local):
    """One reusable Packer per thread (a Packer is not thread-safe, and creating one costs)."""

    def __init__(self) -> None:
        self.packer = new_packer()


LOCAL = _ThreadPacker()


def _encode_seq(code: int) -> Callable[[Encoder, Any], msgpack.ExtType]:
    return lambda enc, obj: msgpack.ExtType(code, enc.pack(list(obj)))


def _encode_bigint(enc: Encoder, obj: int) -> msgpack.ExtType:
    return msgpack.ExtType(Ext.BIGINT, obj.to_bytes(obj.bit_length() // 8 + 1, "little", signed=True))


def _encode_datetime(enc: Encoder, obj: dt.datetime, code: int = Ext.DATETIME) -> msgpack.ExtType:
    head = _DATETIME.pack(
        obj.year, obj.month, obj.day, obj.hour, obj.minute, obj.second, obj.microsecond, obj.fold
    )
    return msgpack.ExtType(code, head + _tz_bytes(enc, obj.tzinfo))


def _encode_time(enc: Encoder, obj: dt.time) -> msgpack.ExtType:
    head = _TIME.pack(obj.hour, obj.minute, obj.second, obj.microsecond, obj.fold)
    return msgpack.ExtType(Ext.TIME, head + _tz_bytes(enc, obj.tzinfo))


def _tz_bytes(enc: Encoder, tz: dt.tzinfo | None) -> bytes:
    return b"" if tz is None else enc.pack(_tz_fields(tz))


def _tz_fields(tz: dt.tzinfo) -> list[Any]:
    """A timezone as [kind, ...]: the exact class comes back, not just the offset."""
    module = type(tz).__module__
    if tz is dt.timezone.utc:
        return [_TZ_UTC]
    if type(tz) is dt.timezone:
        offset = tz.utcoffset(None)
        name = tz.tzname(None)
        default_name = dt.timezone(offset).tzname(None)
        return [
            _TZ_FIXED,
            offset.days,
            offset.seconds,
            offset.microseconds,
            None if name == default_name else name,
        ]
    if module == "zoneinfo" and getattr(tz, "key", None) is not None:
        return [_TZ_ZONEINFO, tz.key]  # type: ignore[attr-defined]
    if module.startswith("pendulum"):
        import pendulum

        if isinstance(tz, pendulum.FixedTimezone):
            return [_TZ_PENDULUM_FIXED, tz.offset, tz.name]
        if isinstance(tz, pendulum.Timezone):
            return [_TZ_PENDULUM, tz.name]
    raise TypeError(
        f"timezone {tz!r} has no portable representation (use zoneinfo, pendulum or datetime.timezone)"
    )


def _encode_tz(enc: Encoder, tz: dt.tzinfo) -> msgpack.ExtType:
    return msgpack.ExtType(Ext.TZINFO, enc.pack(_tz_fields(tz)))


def _encode_date(enc: Encoder, obj: dt.date, code: int = Ext.DATE) -> msgpack.ExtType:
    return msgpack.ExtType(code, _DATE.pack(obj.year, obj.month, obj.day))


def _encode_timedelta(enc: Encoder, obj: dt.timedelta) -> msgpack.ExtType:
    return msgpack.ExtType(Ext.TIMEDELTA, _TIMEDELTA.pack(obj.days, obj.seconds, obj.microseconds))


def _encode_bytes_like(enc: Encoder, obj: bytes | bytearray | memoryview) -> object:
    kind = BUF_BYTEARRAY if type(obj) is bytearray else BUF_BYTES
    view = memoryview(obj)
    if not view.c_contiguous:
        view = memoryview(view.tobytes())  # strided views have no single buffer to reference
    return enc.buffer(view.cast("B"), kind)


def _encode_enum(enc: Encoder, obj: enum.Enum) -> object:
    # Airflow's serde stores int/str/float-based enums as their value and refuses plain ones.
    if isinstance(obj, (int, str, float)):
        return obj.value
    return _encode_by_airflow(enc, obj)


def _encode_pendulum_datetime(enc: Encoder, obj: dt.datetime) -> object:
    if type(obj).__module__.startswith("pendulum"):
        return _encode_datetime(enc, obj, Ext.PENDULUM_DATETIME)
    return _encode_by_airflow(enc, obj)


def _encode_pendulum_date(enc: Encoder, obj: dt.date) -> object:
    if type(obj).__module__.startswith("pendulum"):
        return _encode_date(enc, obj, Ext.PENDULUM_DATE)
    return _encode_by_airflow(enc, obj)


def _encode_tz_subclass(enc: Encoder, obj: dt.tzinfo) -> object:
    return _encode_tz(enc, obj)


def _encode_namedtuple_or_tuple(enc: Encoder, obj: tuple) -> object:
    if hasattr(obj, "_fields"):
        # Airflow's serde turns a namedtuple into a plain tuple; a class would need the allow-list.
        return msgpack.ExtType(Ext.TUPLE, enc.pack(list(obj)))
    return _encode_by_airflow(enc, obj)


def _encode_by_airflow(enc: Encoder, obj: object) -> msgpack.ExtType:
    """dataclasses, attrs, pydantic, serialize()/deserialize() classes: Airflow's serde decides."""
    serde = airflow_serde()

    # User code runs here and may call Codec.encode: give it its own packer, not ours mid-value.
    busy = LOCAL.packer
    LOCAL.packer = new_packer()
    try:
        tree = serde.serialize(obj)
    finally:
        LOCAL.packer = busy
    return msgpack.ExtType(Ext.AIRFLOW_SERDE, enc.pack(tree))


_ENCODERS: dict[type, Callable[[Encoder, Any], object]] = {
    tuple: _encode_seq(Ext.TUPLE),
    set: _encode_seq(Ext.SET),
    frozenset: _encode_seq(Ext.FROZENSET),
    int: _encode_bigint,  # msgpack only calls us for ints beyond 64 bits
    decimal.Decimal: lambda enc, obj: msgpack.ExtType(Ext.DECIMAL, str(obj).encode()),
    dt.datetime: _encode_datetime,
    dt.date: _encode_date,
    dt.time: _encode_time,
    dt.timedelta: _encode_timedelta,
    uuid.UUID: lambda enc, obj: msgpack.ExtType(Ext.UUID, obj.bytes),
    dt.timezone: _encode_tz,
    bytes: _encode_bytes_like,
    bytearray: _encode_bytes_like,
    memoryview: _encode_bytes_like,
    **{
        cls: (lambda enc, obj: msgpack.ExtType(Ext.PATH, enc.pack([_PATHS_BY_TYPE[type(obj)], str(obj)])))
        for cls in _PATHS_BY_TYPE
    },
}
# Checked in order, only for types missing from _ENCODERS (subclasses of builtins and tzinfo).
_SUBCLASS_ENCODERS: list[tuple[type | tuple[type, ...], Callable[[Encoder, Any], object]]] = [
    (enum.Enum, _encode_enum),
    # Like Airflow's serde, other subclasses of builtin scalars are stored as the builtin.
    (int, lambda enc, obj: int(obj)),
    (float, lambda enc, obj: float(obj)),
    (str, lambda enc, obj: str(obj)),
    (dt.datetime, _encode_pendulum_datetime),
    (dt.date, _encode_pendulum_date),
    (dt.tzinfo, _encode_tz_subclass),
    (tuple, _encode_namedtuple_or_tuple),
    # Like Airflow's serde, other subclasses of builtin containers keep their content, not their class.
    (dict, lambda enc, obj: dict(obj)),
    (list, lambda enc, obj: list(obj)),
]


def _decode_bigint(dec: Decoder, data: bytes) -> int:
    return int.from_bytes(data, "little", signed=True)


def _decode_decimal(dec: Decoder, data: bytes) -> decimal.Decimal:
    return decimal.Decimal(data.decode("ascii"))


def _decode_datetime(dec: Decoder, data: bytes) -> dt.datetime:
    y, mo, d, h, mi, s, us, fold = _DATETIME.unpack_from(data)
    return dt.datetime(y, mo, d, h, mi, s, us, _tz_from(dec, data, _DATETIME.size), fold=fold)


def _decode_pendulum_datetime(dec: Decoder, data: bytes) -> dt.datetime:
    import pendulum

    y, mo, d, h, mi, s, us, fold = _DATETIME.unpack_from(data)
    return pendulum.DateTime(y, mo, d, h, mi, s, us, tzinfo=_tz_from(dec, data, _DATETIME.size), fold=fold)


def _decode_time(dec: Decoder, data: bytes) -> dt.time:
    h, mi, s, us, fold = _TIME.unpack_from(data)
    return dt.time(h, mi, s, us, _tz_from(dec, data, _TIME.size), fold=fold)


def _tz_from(dec: Decoder, data: bytes, offset: int) -> dt.tzinfo | None:
    return None if len(data) == offset else _tz_build(dec.unpack(memoryview(data)[offset:]))


def _tz_build(fields: Any) -> dt.tzinfo:
    kind, *args = fields
    if kind == _TZ_UTC and not args:
        return dt.timezone.utc
    if kind == _TZ_FIXED:
        days, seconds, micros, name = args
        offset = dt.timedelta(days, seconds, micros)
        return dt.timezone(offset) if name is None else dt.timezone(offset, name)
    if kind == _TZ_ZONEINFO:
        import zoneinfo

        (key,) = args
        return zoneinfo.ZoneInfo(key)
    if kind in (_TZ_PENDULUM, _TZ_PENDULUM_FIXED):
        import pendulum

        if kind == _TZ_PENDULUM:
            return pendulum.timezone(*args)
        offset, name = args
        return pendulum.FixedTimezone(offset, name=name)
    raise CorruptPayloadError(f"unknown timezone kind {kind!r}")


def _decode_date(dec: Decoder, data: bytes) -> dt.date:
    if len(data) != _DATE.size:
        raise CorruptPayloadError("malformed date")
    return dt.date(*_DATE.unpack(data))


def _decode_pendulum_date(dec: Decoder, data: bytes) -> dt.date:
    import pendulum

    return pendulum.Date(*_DATE.unpack(data))


def _decode_timedelta(dec: Decoder, data: bytes) -> dt.timedelta:
    return dt.timedelta(*_TIMEDELTA.unpack(data))


def _decode_path(dec: Decoder, data: bytes) -> pathlib.PurePath:
    name, text = dec.unpack(data)
    if not isinstance(text, str):
        raise CorruptPayloadError("malformed path")
    return _PATHS[name](text)


def _decode_list_as(kind: type) -> Callable[[Decoder, bytes], object]:
    def decode(dec: Decoder, data: bytes) -> object:
        items = dec.unpack(data)
        if not isinstance(items, list):
            raise CorruptPayloadError(f"malformed {kind.__name__}")
        return kind(items)

    return decode


def _decode_by_airflow(dec: Decoder, data: bytes) -> object:
    serde = airflow_serde()

    tree = dec.unpack(data)
    try:
        return serde.deserialize(tree)
    except ImportError as exc:
        message = str(exc)
        if "allow" not in message:
            raise UnsupportedFormatError(f"value names a class that cannot be imported here: {exc}") from exc
        classname = message.split(" ", 1)[0]
        raise DisallowedClassError(
            f"refusing to rebuild class {classname!r}: it is not in [core] allowed_deserialization_classes. "
            f"Add it (or a glob such as '{classname.rsplit('.', 1)[0]}.*') to that setting "
            "(env AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES) if you trust its source."
        ) from None


_DECODERS: dict[int, Callable[[Decoder, bytes], object]] = {
    Ext.TUPLE: _decode_list_as(tuple),
    Ext.SET: _decode_list_as(set),
    Ext.FROZENSET: _decode_list_as(frozenset),
    Ext.BIGINT: _decode_bigint,
    Ext.DECIMAL: _decode_decimal,
    Ext.DATETIME: _decode_datetime,
    Ext.DATE: _decode_date,
    Ext.TIME: _decode_time,
    Ext.TIMEDELTA: _decode_timedelta,
    Ext.UUID: lambda dec, data: uuid.UUID(bytes=data),
    Ext.TZINFO: lambda dec, data: _tz_build(dec.unpack(data)),
    Ext.PATH: _decode_path,
    Ext.BYTEARRAY: lambda dec, data: bytearray(data),
    Ext.PENDULUM_DATETIME: _decode_pendulum_datetime,
    Ext.PENDULUM_DATE: _decode_pendulum_date,
    Ext.BUFFER_REF: Decoder.buffer,
    Ext.AIRFLOW_SERDE: _decode_by_airflow,
    **science.DECODERS,
}
