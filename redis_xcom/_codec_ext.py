"""The one table of msgpack extension codes redis-xcom writes, and the limits shared by its hooks."""

from __future__ import annotations

import enum


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
