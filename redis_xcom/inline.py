"""Whether a value stays inline in the metadata DB ([redis_xcom] inline_max_bytes) instead of going to Redis.

A value stays inline only when Airflow's default backend stores and loads it back exactly, whatever
the metadata DB: plain JSON of exact types (None, bool, int within 64 bits, finite float without an
exponent, str, list, dict with str keys). Anything else (tuples, which JSON turns into lists, bytes,
Decimal, datetime, subclasses such as enums, non-str keys, ...) goes to Redis at any size, so where
a value lives never changes what a pull returns.

The size is the length of the JSON text the DB's JSON column is given (``json.dumps``: ASCII, with
non-ASCII characters escaped). A walk over the value adds it up and gives up as soon as the sum passes
the threshold, so a large value costs a few steps and is never encoded: a string longer than what is
left is refused on its length alone, and only the strings that fit are escaped (in C) to count them.
"""

from __future__ import annotations

import math
from json.encoder import encode_basestring_ascii
from typing import Any

from redis_xcom.keys import REFERENCE_SCHEME

# Airflow's serde and the supervisor carry ints as 64-bit integers.
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
# Deeper values go to Redis: the walk, Airflow's serde and json.dumps all nest per level.
MAX_DEPTH = 64
# Dict keys Airflow's serde reserves for its own markers (__classname__, __var, ...) start with this.
_RESERVED_KEY_START = "__"


class _NotInline(Exception):
    """The value cannot stay inline: a type the default backend does not keep exactly, or too big."""


def kept_inline(value: Any, max_bytes: int) -> bool:
    """Whether value stays in the DB row: Airflow's default backend keeps it exactly, in at most
    max_bytes of JSON text."""
    if max_bytes <= 0:
        return False
    if type(value) is str and value.startswith(REFERENCE_SCHEME):
        return False  # a pull would take it for a reference to Redis
    try:
        return json_length(value, max_bytes) <= max_bytes
    except _NotInline:
        return False


def json_length(value: Any, budget: int, depth: int = 0) -> int:
    """len(json.dumps(value)), counted without encoding the value; _NotInline for a value that cannot
    stay inline, or as soon as the count passes budget."""
    kind = type(value)
    if kind is str:
        return _str_length(value, budget)
    if kind is dict or kind is list:
        if depth >= MAX_DEPTH:
            raise _NotInline
        # Brackets, ", " between items, and for a dict the ": " after each key.
        total = 2 + 2 * max(len(value) - 1, 0) + (2 * len(value) if kind is dict else 0)
        if total > budget:
            raise _NotInline
        if kind is list:
            for item in value:
                total += json_length(item, budget - total, depth + 1)
            return total
        for key, item in value.items():
            if type(key) is not str or key.startswith(_RESERVED_KEY_START):
                raise _NotInline
            total += _str_length(key, budget - total)
            total += json_length(item, budget - total, depth + 1)
        return total
    if value is None or value is True:
        size = 4
    elif value is False:
        size = 5
    elif kind is int:
        if not _INT_MIN <= value <= _INT_MAX:
            raise _NotInline
        size = len(int.__repr__(value))
    elif kind is float:
        if not math.isfinite(value):
            raise _NotInline  # NaN and infinities are no JSON
        text = float.__repr__(value)
        # PostgreSQL's JSONB gives an exponent back as an int (1e+16 -> 10000000000000000), -0.0 as 0.0.
        if "e" in text or text == "-0.0":
            raise _NotInline
        size = len(text)
    else:
        raise _NotInline
    if size > budget:
        raise _NotInline
    return size


def _str_length(text: str, budget: int) -> int:
    """The JSON length of a string, quotes and escapes included; one len() when it cannot fit."""
    if len(text) + 2 > budget:
        raise _NotInline
    if "\x00" in text:
        raise _NotInline  # PostgreSQL's JSONB refuses \u0000
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise _NotInline from None  # a lone surrogate: neither the supervisor nor JSONB takes it
    size = len(encode_basestring_ascii(text))
    if size > budget:
        raise _NotInline
    return size
