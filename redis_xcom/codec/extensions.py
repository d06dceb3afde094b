"""The one table of msgpack extension codes redis-xcom writes, the limits shared by its hooks, and
the interface each type's encoder and decoder is given."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from redis_xcom.codec.budget import DecodeBudget


class Ext(enum.IntEnum):
    """Extension codes written into stored values; never renumber, only append."""

    TUPLE = 1
    SET = 2
    FROZENSET = 3
    BIGINT = 4
    DECIMAL = 5
    DATETIME = 6
    DATE = 7
    TIME = 8
    TIMEDELTA = 9
    UUID = 10
    TZINFO = 11
    PATH = 12
    BYTEARRAY = 13
    PENDULUM_DATETIME = 14
    PENDULUM_DATE = 15
    BUFFER_REF = 16
    AIRFLOW_SERDE = 17
    NUMPY_ARRAY = 30
    NUMPY_SCALAR = 31
    PANDAS_DATAFRAME = 32
    PANDAS_SERIES = 33
    ARROW_TABLE = 34
    POLARS_DATAFRAME = 35


# Nested extension values recurse through C (msgpack) and Python frames; bound the depth so a
# hostile value cannot exhaust the C stack, and refuse to write what could not be read back.
MAX_DEPTH = 64
# Buffers at least this large travel after the msgpack body (copied once, never re-packed).
OUT_OF_BAND_MIN = 64 * 1024
# What an out-of-band buffer decodes to.
BUF_BYTES, BUF_BYTEARRAY, BUF_VIEW = 0, 1, 2


class ExtensionEncoder(Protocol):
    """What an extension's encoder may ask of the hook that called it."""

    def pack(self, obj: object) -> bytes:
        """Pack a nested value (the inside of an extension) one level deeper."""
        ...

    def buffer(self, buf: memoryview, kind: int) -> object:
        """Reference a raw byte buffer: inline when small, out of band when large."""
        ...

    def run_user_code(self, func: Callable[[Any], Any], obj: object) -> Any:
        """func(obj), for code outside the codec that may itself encode values."""
        ...


class ExtensionDecoder(Protocol):
    """What an extension's decoder may ask of the hook that called it."""

    # What the decode may still build; None on the small values' fast path (see budget.NeedsBudget).
    budget: DecodeBudget | None

    def unpack(self, data: bytes | memoryview) -> Any:
        """Unpack the inside of an extension one level deeper."""
        ...
