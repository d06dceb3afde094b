"""Encoders and decoders of the standard library's types, and of classes Airflow's serde handles.

One function per extension code in each direction; ``hooks`` dispatches to the tables at the end.
Each encoder gets the value's ``ExtensionEncoder`` (to pack what it holds one level deeper) and each
decoder its ``ExtensionDecoder``: these tables know nothing of msgpack's hook objects.
"""

from __future__ import annotations

import contextvars
import dataclasses
import datetime as dt
import decimal
import enum
import pathlib
import re
import struct
import uuid
from collections.abc import Callable
from typing import Any

import msgpack

from redis_xcom.airflow_compat import airflow_serde
from redis_xcom.codec.budget import FLOOD_CHECK_MIN, refuse_hash_flood
from redis_xcom.codec.extensions import BUF_BYTEARRAY, BUF_BYTES, Ext, ExtensionDecoder, ExtensionEncoder
from redis_xcom.errors import (
    CorruptPayloadError,
    DisallowedClassError,
    UnsupportedFormatError,
)

_DATE = struct.Struct("<HBB")
_TIME = struct.Struct("<BBBIB")  # hour, minute, second, microsecond, fold
_DATETIME = struct.Struct("<HBBBBBIB")
_TIMEDELTA = struct.Struct("<iii")
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


def _encode_seq(code: int) -> Callable[[ExtensionEncoder, Any], msgpack.ExtType]:
    return lambda enc, obj: msgpack.ExtType(code, enc.pack(list(obj)))


def _encode_bigint(enc: ExtensionEncoder, obj: int) -> msgpack.ExtType:
    return msgpack.ExtType(Ext.BIGINT, obj.to_bytes(obj.bit_length() // 8 + 1, "little", signed=True))


def _encode_datetime(enc: ExtensionEncoder, obj: dt.datetime, code: int = Ext.DATETIME) -> msgpack.ExtType:
    head = _DATETIME.pack(
        obj.year, obj.month, obj.day, obj.hour, obj.minute, obj.second, obj.microsecond, obj.fold
    )
    return msgpack.ExtType(code, head + _tz_bytes(enc, obj.tzinfo))


def _encode_time(enc: ExtensionEncoder, obj: dt.time) -> msgpack.ExtType:
    head = _TIME.pack(obj.hour, obj.minute, obj.second, obj.microsecond, obj.fold)
    return msgpack.ExtType(Ext.TIME, head + _tz_bytes(enc, obj.tzinfo))


def _tz_bytes(enc: ExtensionEncoder, tz: dt.tzinfo | None) -> bytes:
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


def _encode_tz(enc: ExtensionEncoder, tz: dt.tzinfo) -> msgpack.ExtType:
    return msgpack.ExtType(Ext.TZINFO, enc.pack(_tz_fields(tz)))


def _encode_date(enc: ExtensionEncoder, obj: dt.date, code: int = Ext.DATE) -> msgpack.ExtType:
    return msgpack.ExtType(code, _DATE.pack(obj.year, obj.month, obj.day))


def _encode_timedelta(enc: ExtensionEncoder, obj: dt.timedelta) -> msgpack.ExtType:
    return msgpack.ExtType(Ext.TIMEDELTA, _TIMEDELTA.pack(obj.days, obj.seconds, obj.microseconds))


def _encode_bytes_like(enc: ExtensionEncoder, obj: bytes | bytearray | memoryview) -> object:
    kind = BUF_BYTEARRAY if type(obj) is bytearray else BUF_BYTES
    view = memoryview(obj)
    if not view.c_contiguous:
        view = memoryview(view.tobytes())  # strided views have no single buffer to reference
    return enc.buffer(view.cast("B"), kind)


def _encode_enum(enc: ExtensionEncoder, obj: enum.Enum) -> object:
    # Airflow's serde stores int/str/float-based enums as their value and refuses plain ones.
    if isinstance(obj, (int, str, float)):
        return obj.value
    return encode_by_airflow(enc, obj)


def _encode_pendulum_datetime(enc: ExtensionEncoder, obj: dt.datetime) -> object:
    if type(obj).__module__.startswith("pendulum"):
        return _encode_datetime(enc, obj, Ext.PENDULUM_DATETIME)
    return encode_by_airflow(enc, obj)


def _encode_pendulum_date(enc: ExtensionEncoder, obj: dt.date) -> object:
    if type(obj).__module__.startswith("pendulum"):
        return _encode_date(enc, obj, Ext.PENDULUM_DATE)
    return encode_by_airflow(enc, obj)


def _encode_tz_subclass(enc: ExtensionEncoder, obj: dt.tzinfo) -> object:
    return _encode_tz(enc, obj)


def _encode_namedtuple_or_tuple(enc: ExtensionEncoder, obj: tuple) -> object:
    if hasattr(obj, "_fields"):
        # Airflow's serde turns a namedtuple into a plain tuple; a class would need the allow-list.
        return msgpack.ExtType(Ext.TUPLE, enc.pack(list(obj)))
    return encode_by_airflow(enc, obj)


def encode_by_airflow(enc: ExtensionEncoder, obj: object) -> msgpack.ExtType:
    """dataclasses, attrs, pydantic, serialize()/deserialize() classes: Airflow's serde decides."""
    tree = enc.run_user_code(airflow_serde().serialize, obj)
    return msgpack.ExtType(Ext.AIRFLOW_SERDE, enc.pack(tree))


ENCODERS: dict[type, Callable[[ExtensionEncoder, Any], object]] = {
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
SUBCLASS_ENCODERS: list[tuple[type | tuple[type, ...], Callable[[ExtensionEncoder, Any], object]]] = [
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


def _decode_bigint(dec: ExtensionDecoder, data: bytes) -> int:
    return int.from_bytes(data, "little", signed=True)


def _decode_decimal(dec: ExtensionDecoder, data: bytes) -> decimal.Decimal:
    return decimal.Decimal(data.decode("ascii"))


def _decode_datetime(dec: ExtensionDecoder, data: bytes) -> dt.datetime:
    y, mo, d, h, mi, s, us, fold = _DATETIME.unpack_from(data)
    return dt.datetime(y, mo, d, h, mi, s, us, _tz_from(dec, data, _DATETIME.size), fold=fold)


def _decode_pendulum_datetime(dec: ExtensionDecoder, data: bytes) -> dt.datetime:
    import pendulum

    y, mo, d, h, mi, s, us, fold = _DATETIME.unpack_from(data)
    return pendulum.DateTime(y, mo, d, h, mi, s, us, tzinfo=_tz_from(dec, data, _DATETIME.size), fold=fold)


def _decode_time(dec: ExtensionDecoder, data: bytes) -> dt.time:
    h, mi, s, us, fold = _TIME.unpack_from(data)
    return dt.time(h, mi, s, us, _tz_from(dec, data, _TIME.size), fold=fold)


def _tz_from(dec: ExtensionDecoder, data: bytes, offset: int) -> dt.tzinfo | None:
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


def _decode_date(dec: ExtensionDecoder, data: bytes) -> dt.date:
    if len(data) != _DATE.size:
        raise CorruptPayloadError("malformed date")
    return dt.date(*_DATE.unpack(data))


def _decode_pendulum_date(dec: ExtensionDecoder, data: bytes) -> dt.date:
    import pendulum

    return pendulum.Date(*_DATE.unpack(data))


def _decode_timedelta(dec: ExtensionDecoder, data: bytes) -> dt.timedelta:
    return dt.timedelta(*_TIMEDELTA.unpack(data))


def _decode_path(dec: ExtensionDecoder, data: bytes) -> pathlib.PurePath:
    name, text = dec.unpack(data)
    if not isinstance(text, str):
        raise CorruptPayloadError("malformed path")
    return _PATHS[name](text)


def _decode_list_as(kind: type) -> Callable[[ExtensionDecoder, bytes], object]:
    def decode(dec: ExtensionDecoder, data: bytes) -> object:
        items = dec.unpack(data)
        if not isinstance(items, list):
            raise CorruptPayloadError(f"malformed {kind.__name__}")
        return kind(items)

    return decode


def _decode_set_as(kind: type) -> Callable[[ExtensionDecoder, bytes], object]:
    def decode(dec: ExtensionDecoder, data: bytes) -> object:
        items = dec.unpack(data)
        if not isinstance(items, list):
            raise CorruptPayloadError(f"malformed {kind.__name__}")
        if len(items) >= FLOOD_CHECK_MIN:
            # A hash flood makes building a set quadratic; a real set of this size has next to no collisions.
            refuse_hash_flood(items, len(items), kind.__name__)
        return kind(items)

    return decode


@dataclasses.dataclass(frozen=True)
class SerializedForm:
    """A class instance as Airflow's serde wrote it, not rebuilt: what a reader that must not import
    or run user classes (the UI's API server) gets instead of the object."""

    classname: str
    version: object
    data: object


# False where classes must never be imported or run (Codec(rebuild_classes=False) sets it per decode).
REBUILD_CLASSES: contextvars.ContextVar[bool] = contextvars.ContextVar("redis_xcom_rebuild", default=True)
# What a class name may hold to be quoted in advice to copy into a setting (else it is escaped).
_DOTTED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _decode_by_airflow(dec: ExtensionDecoder, data: bytes) -> object:
    tree = dec.unpack(data)
    if not REBUILD_CLASSES.get():
        return _serialized_form(tree)
    serde = airflow_serde()
    try:
        return serde.deserialize(tree)
    except ImportError as exc:
        message = str(exc)
        if "allow" not in message:
            raise UnsupportedFormatError(f"value names a class that cannot be imported here: {exc}") from exc
        classname = message.split(" ", 1)[0]
        if not _DOTTED_NAME.fullmatch(classname):
            # Bytes in Redis name the class: never hand a crafted string over as a setting to copy.
            raise DisallowedClassError(
                f"refusing to rebuild class {classname.encode('unicode_escape').decode()!r}: its name is "
                "not a Python dotted name (the value is corrupt or crafted)"
            ) from None
        raise DisallowedClassError(
            f"refusing to rebuild class {classname!r}: it is not in [core] allowed_deserialization_classes. "
            f"Add it (or a glob such as '{classname.rsplit('.', 1)[0]}.*') to that setting "
            "(env AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES) if you trust its source."
        ) from None


def _serialized_form(tree: object) -> SerializedForm:
    """serde's {"__classname__", "__version__", "__data__"} tree, kept as data."""
    if not isinstance(tree, dict) or not isinstance(tree.get("__classname__"), str):
        raise CorruptPayloadError("malformed Airflow-serialized object")
    return SerializedForm(tree["__classname__"], tree.get("__version__"), tree.get("__data__"))


DECODERS: dict[int, Callable[[ExtensionDecoder, bytes], object]] = {
    Ext.TUPLE: _decode_list_as(tuple),
    Ext.SET: _decode_set_as(set),
    Ext.FROZENSET: _decode_set_as(frozenset),
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
    Ext.AIRFLOW_SERDE: _decode_by_airflow,
}
